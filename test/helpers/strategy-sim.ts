import { expect, it } from 'vitest';
import { loadBarsCsv } from '../../shared/adapters/fs/bars.js';
import { runBacktest } from '../../shared/core/backtest/engine.js';
import { type BarSeries, barAt } from '../../shared/core/market/types.js';
import {
  DIRECTIONS,
  type Direction,
  type PositionSide,
  type StrategyDefinition,
} from '../../shared/core/strategies/types.js';
import { noCosts } from './series.js';

/** The bundled daily bars and the GOOG fixture: the series every rule is checked over. */
function bundledSeries(): BarSeries[] {
  return [
    ...['SPY', 'QQQ', 'AAPL', 'MSFT'].map((symbol) => loadBarsCsv(`data/${symbol}.csv`)),
    loadBarsCsv('test/fixtures/data/GOOG.csv'),
  ];
}

/** A bar row with volume: [date, open, high, low, close, volume]. */
export type VolumeRow = readonly [string, number, number, number, number, number];

export function seriesWithVolume(symbol: string, rows: readonly VolumeRow[]): BarSeries {
  const col = (k: number) => Float64Array.from(rows, (r) => r[k] as number);
  return {
    symbol,
    time: Float64Array.from(rows, (r) => Date.parse(`${r[0]}T00:00:00Z`)),
    open: col(1),
    high: col(2),
    low: col(3),
    close: col(4),
    volume: col(5),
    intraday: false,
  };
}

const day = (time: number) => new Date(time).toISOString().slice(0, 10);

/** A trade as both sides of the comparison write it. */
type SimpleTrade = readonly [
  side: 'long' | 'short',
  entry: string,
  entryPrice: number,
  exit: string,
  exitPrice: number,
];

/** The engine's run of a strategy on one series: 10 shares a trade, no costs, closing at the end. */
export function engineRun(
  strategy: StrategyDefinition<unknown>,
  params: Record<string, unknown>,
  series: BarSeries,
  direction: Direction,
) {
  const result = runBacktest({
    series: [series],
    strategy,
    params,
    options: {
      initialCash: 1e9,
      sizing: { mode: 'fixed', qty: 10 },
      cashBuffer: 0,
      commission: noCosts,
      slippageBps: 0,
      fractional: false,
      endOfData: 'close',
      riskFreeRate: 0,
      direction,
    },
  });
  return {
    trades: result.trades.map(
      (t): SimpleTrade => [
        t.direction,
        day(t.entryTime),
        t.entryPrice,
        day(t.exitTime as number),
        t.exitPrice as number,
      ],
    ),
    /** Every decision that placed an order: [date, role, side]. */
    decisions: result.orders
      .filter((o) => o.role === 'entry' || o.role === 'exit')
      .map((o) => [day(o.createdTime), o.role, o.side] as const),
  };
}

/** What a rule decides at bar t's close for a position: an entry side, an exit, or nothing. */
export type RuleDecision = 'long' | 'short' | 'exit' | null;

/**
 * An independent simulation of "decide at t's close, act at t+1's open": one position of fixed
 * size, no decision at the last bar, an open position closed at the last close. `rule` is the
 * strategy's rule written out again by the test; the long-only filter is applied here.
 */
function referenceTrades(
  series: BarSeries,
  direction: Direction,
  rule: (t: number, position: PositionSide) => RuleDecision,
): SimpleTrade[] {
  const n = series.time.length;
  const trades: SimpleTrade[] = [];
  let position: PositionSide = 'flat';
  let entryAt = -1;
  let pending: RuleDecision = null;
  const close = (t: number, price: number) => {
    trades.push([
      position as 'long' | 'short',
      day(series.time[entryAt] as number),
      series.open[entryAt] as number,
      day(series.time[t] as number),
      price,
    ]);
    position = 'flat';
  };
  for (let t = 0; t < n; t++) {
    if (pending === 'exit') close(t, series.open[t] as number);
    else if (pending === 'long' || pending === 'short') {
      position = pending;
      entryAt = t;
    }
    pending = null;
    if (t === n - 1) break;
    let decision = rule(t, position);
    if (decision === 'short' && direction === 'long-only') decision = null;
    if (position !== 'flat' && decision !== 'exit') decision = null;
    if (position === 'flat' && decision === 'exit') decision = null;
    pending = decision;
  }
  if (position !== 'flat') close(n - 1, series.close[n - 1] as number);
  return trades;
}

/**
 * Every intent the strategy's own instance gives along a run where its entries and exits fill at
 * the next open (the last bar included, where nothing can fill): [index, action, side?].
 */
export function instanceDecisions(
  strategy: StrategyDefinition<unknown>,
  params: Record<string, unknown>,
  series: BarSeries,
  direction: Direction,
): (readonly [number, string, string?])[] {
  const instance = strategy.create(strategy.params.parse(params), { direction });
  const out: (readonly [number, string, string?])[] = [];
  let position: PositionSide = 'flat';
  let pending: PositionSide | undefined;
  for (let t = 0; t < series.time.length; t++) {
    if (pending !== undefined) position = pending;
    pending = undefined;
    const intent = instance.onBar(barAt(series, t), { position });
    if (intent.action === 'enter') {
      out.push([t, 'enter', intent.side]);
      pending = intent.side;
    } else if (intent.action === 'exit') {
      out.push([t, 'exit']);
      pending = 'flat';
    }
  }
  return out;
}

/**
 * One test per bundled series, parameter set and direction: the engine's trades equal those of the
 * rule the test wrote out again (`ruleFor`), run by {@link referenceTrades}.
 */
export function itMatchesTheReference<P extends Record<string, number>>(
  strategy: StrategyDefinition<unknown>,
  cases: readonly P[],
  ruleFor: (series: BarSeries, params: P) => (t: number, position: PositionSide) => RuleDecision,
): void {
  for (const series of bundledSeries()) {
    for (const params of cases) {
      for (const direction of DIRECTIONS) {
        it(`${series.symbol} ${JSON.stringify(params)} ${direction}`, () => {
          const engine = engineRun(strategy, params, series, direction).trades;
          expect(engine.length).toBeGreaterThan(3);
          expect(engine).toEqual(referenceTrades(series, direction, ruleFor(series, params)));
        });
      }
    }
  }
}
