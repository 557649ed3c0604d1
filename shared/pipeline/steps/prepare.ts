import type { BarSeries } from '../../core/market/types.js';
import {
  type JobSpec,
  keys,
  type PipelinePorts,
  type SeriesJson,
  seriesFromJson,
  seriesToJson,
  type WindowItem,
  writeJson,
} from '../common.js';
import { buildJobContext, JobContexts } from '../context.js';

/** PrepareData's output: the Map items inline, or (distributed) only their key in the store. */
export interface PrepareOutput {
  job: JobSpec;
  items: WindowItem[];
  itemsKey: string;
  itemCount: number;
  distributed: boolean;
}

/**
 * PrepareData: fetch the bars into the store (from the data cache when another job already
 * fetched the same symbol and span), plan the windows, list the Map items.
 */
export function createPrepareStep(
  ports: Pick<PipelinePorts, 'store' | 'marketData' | 'distributedThreshold'>,
  contexts = new JobContexts(ports.store),
) {
  const { store } = ports;
  return async function prepare(spec: JobSpec): Promise<PrepareOutput> {
    const cached = await Promise.all(
      spec.symbols.map(async (symbol) => store.getText(keys.dataCache(symbol, spec.from, spec.to))),
    );
    const missing = spec.symbols.filter((_, i) => cached[i] === undefined);
    const fetched =
      missing.length === 0
        ? []
        : await (await ports.marketData()).getDailyBars({ symbols: missing, from: spec.from, to: spec.to });
    await Promise.all(
      fetched.map((s) => writeJson(store, keys.dataCache(s.symbol, spec.from, spec.to), seriesToJson(s))),
    );
    const series = spec.symbols.map((symbol, i) => {
      const text = cached[i];
      if (text !== undefined) return seriesFromJson(JSON.parse(text) as SeriesJson);
      return fetched[missing.indexOf(symbol)] as BarSeries;
    });
    await Promise.all(
      series.map((s) => writeJson(store, keys.series(spec.jobId, s.symbol), seriesToJson(s))),
    );
    await writeJson(store, keys.job(spec.jobId), spec);
    const ctx = buildJobContext(spec, series);
    contexts.set(ctx);
    const items: WindowItem[] = ctx.plan.flatMap((unit, u) =>
      unit.windows.map((_, w) => ({ jobId: spec.jobId, unit: u, window: w })),
    );
    await writeJson(store, keys.items(spec.jobId), items);
    const backtests = ctx.plan.reduce(
      (n, unit, u) => n + unit.windows.length * (ctx.unitSettings[u]?.combos.length ?? 0),
      0,
    );
    const distributed = backtests > ports.distributedThreshold;
    return {
      job: spec,
      items: distributed ? [] : items,
      itemsKey: keys.items(spec.jobId),
      itemCount: items.length,
      distributed,
    };
  };
}
