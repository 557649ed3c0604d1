import type * as z from 'zod';
import type { Bar } from '../market/types.js';
import type { IndicatorCache, VectorRule } from './vector.js';

/** The side a position is on, or flat. */
export type PositionSide = 'flat' | 'long' | 'short';

/**
 * Which sides a run may hold: an option of the run (backtest options, the config's
 * `strategy.direction`, `--direction`), never a strategy parameter. `long-only` ignores a rule's
 * short side; `long-short` takes it as written.
 */
export const DIRECTIONS = ['long-only', 'long-short'] as const;
export type Direction = (typeof DIRECTIONS)[number];

/** What a strategy instance is told about the run it decides for. */
export interface RunContext {
  readonly direction: Direction;
}

/** How an entry order is placed at the next session. All entries are valid for that session only. */
export type EntryOrder =
  | { readonly type: 'market' }
  | { readonly type: 'limit'; readonly limitPrice: number }
  | { readonly type: 'stop'; readonly stopPrice: number }
  | { readonly type: 'stop-limit'; readonly stopPrice: number; readonly limitPrice: number };

/** A trailing stop that protects a position: a fixed distance in dollars or a percent of the best price. */
export type TrailingStop = { readonly amount: number } | { readonly percent: number };

/** Enter a position (or reverse into it) at the next session. */
export interface EnterIntent {
  readonly action: 'enter';
  readonly side: 'long' | 'short';
  /** Default: a market order at the next open. */
  readonly order?: EntryOrder;
  /** Protective stop price. Entries without a stop are refused when the risk rules apply. */
  readonly stopLoss?: number;
  /** Take-profit price; with `stopLoss` it makes a bracket (one cancels the other). */
  readonly takeProfit?: number;
  readonly trailingStop?: TrailingStop;
  /** Average true range at the decision, when the strategy computes one (used by ATR sizing and stops). */
  readonly atr?: number;
  readonly reason: string;
}

/** Close the position at the next open. */
export interface ExitIntent {
  readonly action: 'exit';
  readonly reason: string;
}

/** Do nothing. */
export interface HoldIntent {
  readonly action: 'hold';
}

/** What a strategy wants after seeing a bar's close. */
export type Intent = EnterIntent | ExitIntent | HoldIntent;

export const HOLD: HoldIntent = Object.freeze({ action: 'hold' });

/** What a strategy knows about the account when it decides. */
export interface DecisionContext {
  readonly position: PositionSide;
}

/**
 * A strategy instance for one symbol. It holds its indicator state and is fed every bar in order,
 * warm-up bars included; the same instance type runs in the backtest and in the live functions.
 */
export interface StrategyInstance {
  /** Bars needed before the first decision can be anything but `hold`. */
  readonly warmup: number;
  /** Updates the indicator state with the bar (at its close) and returns the intent for the next session. */
  onBar(bar: Bar, context: DecisionContext): Intent;
  /**
   * Optional: the indicator values after the last `onBar`, by name (e.g. `SMA 10`), in price units,
   * for the report to draw over the price (NaN during warm-up). Decisions never read it.
   */
  indicators?(): Readonly<Record<string, number>>;
}

/** A named strategy: its parameter schema, the directions it supports and a factory. */
export interface StrategyDefinition<P = unknown> {
  readonly name: string;
  readonly description: string;
  /** Validates and fills defaults; strict (an unknown key is an error); errors name the parameter. */
  readonly params: z.ZodType<P>;
  /** The run directions the strategy can trade; a run in another direction is refused. */
  readonly directions: readonly Direction[];
  /** Builds the per-symbol instance from validated parameters, for a run in `run.direction`. */
  create(params: P, run: RunContext): StrategyInstance;
  /**
   * Optional, for the fast engine: the same rule over a whole series, from indicator arrays the
   * cache shares across a parameter grid. It must decide exactly as `create`'s instance fed every
   * bar in order (the fast engine's oracle test compares them); without it the fast engine feeds
   * the instance. `out`, when given, is an array of the series' length that receives the codes
   * (every element written; a sweep reuses one for all its combinations); otherwise a new one.
   */
  vectorize?(params: P, run: RunContext, cache: IndicatorCache, out?: Uint8Array): VectorRule;
}
