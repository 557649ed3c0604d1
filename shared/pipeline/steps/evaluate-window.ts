import { runOutOfSample, type WindowChoice } from '../../core/research/walk-forward.js';
import { keys, type PipelinePorts, readJson, type WindowItem, writeJson } from '../common.js';
import { JobContexts, plannedWindow, unitSeries } from '../context.js';
import type { ChosenWindow } from './optimize-window.js';

/** A window run out-of-sample: its outcome is at `resultKey` in the store. */
export type EvaluatedWindow = WindowItem & { resultKey: string };

/** EvaluateWindow: run the chosen parameters out-of-sample. */
export function createEvaluateWindowStep(
  ports: Pick<PipelinePorts, 'store'>,
  contexts = new JobContexts(ports.store),
) {
  return async function evaluateWindow(item: ChosenWindow): Promise<EvaluatedWindow> {
    const ctx = await contexts.get(item.jobId);
    const { unit, window, settings } = plannedWindow(ctx, item);
    const choice = await readJson<WindowChoice>(ports.store, item.choiceKey);
    const outcome = runOutOfSample(settings, unitSeries(ctx, unit), window, item.window, choice);
    const resultKey = keys.window(item);
    await writeJson(ports.store, resultKey, outcome);
    return { jobId: item.jobId, unit: item.unit, window: item.window, resultKey };
  };
}
