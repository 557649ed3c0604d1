/**
 * Execution realism of the local paper broker, for rehearsals (`quantshift replay` flags). Every
 * knob is off by default, so a plain replay fills exactly as the backtest does. Each one is layered
 * around the fill rule, never inside it: the rule gives a price, this module moves it or delays its
 * report, or refuses the order before it exists.
 *
 * - `openSlippageBps` (`--slippage-bps N`): a market-on-open fill (`opg`) is filled N bps worse than
 *   the opening price (a buy higher, a sell lower), in place of the cost model's slippage;
 * - `slippageJitterBps` (`--slippage-jitter-bps J`): adds seeded noise, uniform in [-J, +J] bps, to
 *   that slippage (the median stays N);
 * - `rejectRate` (`--reject-rate R`): a market-on-open order is refused at submission (HTTP 422)
 *   with probability R;
 * - `lateFillRate` (`--late-fill-rate R`): a fill is reported (its FILL activity listed) only from
 *   the next session's close, with probability R: the end-of-day step finds the order filled without
 *   its fill, alerts, and backfills it the next day.
 *
 * Partial fills are the broker's own opt-in rule (`partialFill`, `--partial-fill F`).
 *
 * Every draw is a hash of the seed and a key (the client order id, the fill's place in its order),
 * never a running generator: the same order gets the same draw however often it is retried, and two
 * replays with one seed trade alike.
 */
import { createHash } from 'node:crypto';
import { InvalidParameterError } from '../../core/errors.js';

export interface ExecutionRealism {
  /** Slippage in bps on market-on-open fills, adverse, replacing the cost model's there. */
  readonly openSlippageBps?: number;
  /** Seeded noise in bps, uniform in [-J, +J], added to `openSlippageBps`. */
  readonly slippageJitterBps?: number;
  /** Probability that a market-on-open order is refused at submission. */
  readonly rejectRate?: number;
  /** Probability that a fill is reported only from the next session's close. */
  readonly lateFillRate?: number;
  /** The seed of every draw (default 1). */
  readonly seed?: number;
}

/** Checks the knobs: bps in [0, 1000], rates in [0, 1], an integer seed. */
export function checkExecutionRealism(realism: ExecutionRealism): ExecutionRealism {
  const bps = (name: string, value: number | undefined) => {
    if (value !== undefined && !(Number.isFinite(value) && value >= 0 && value <= 1000))
      throw new InvalidParameterError(`paper broker: ${name} ${value} must be in [0, 1000] bps`);
  };
  const rate = (name: string, value: number | undefined) => {
    if (value !== undefined && !(Number.isFinite(value) && value >= 0 && value <= 1))
      throw new InvalidParameterError(`paper broker: ${name} ${value} must be in [0, 1]`);
  };
  bps('openSlippageBps', realism.openSlippageBps);
  bps('slippageJitterBps', realism.slippageJitterBps);
  rate('rejectRate', realism.rejectRate);
  rate('lateFillRate', realism.lateFillRate);
  if (realism.seed !== undefined && !Number.isSafeInteger(realism.seed))
    throw new InvalidParameterError(`paper broker: seed ${realism.seed} must be an integer`);
  return realism;
}

/** A uniform draw in [0, 1) from the seed and a key (the first 48 bits of their SHA-256). */
export function seededDraw(seed: number, key: string): number {
  const digest = createHash('sha256').update(`${seed}\u0000${key}`).digest();
  return digest.readUIntBE(0, 6) / 2 ** 48;
}

/**
 * The price of a market-on-open fill with the opening-auction slippage, or `undefined` when the
 * realism sets none (the cost model's slippage applies). `key` names the fill (order and part).
 */
export function openAuctionPrice(
  realism: ExecutionRealism,
  side: 'buy' | 'sell',
  openPrice: number,
  key: string,
): number | undefined {
  if (realism.openSlippageBps === undefined) return undefined;
  const jitter = realism.slippageJitterBps ?? 0;
  const noise = jitter === 0 ? 0 : (seededDraw(realism.seed ?? 1, `jitter:${key}`) * 2 - 1) * jitter;
  const bps = realism.openSlippageBps + noise;
  return side === 'buy' ? openPrice * (1 + bps / 10_000) : openPrice * (1 - bps / 10_000);
}

/** Whether the broker refuses this market-on-open order (by its client order id). */
export function rejectsOrder(realism: ExecutionRealism, clientOrderId: string): boolean {
  const rate = realism.rejectRate ?? 0;
  return rate > 0 && seededDraw(realism.seed ?? 1, `reject:${clientOrderId}`) < rate;
}

/** Whether this fill (order and part) is reported late. */
export function reportsLate(realism: ExecutionRealism, key: string): boolean {
  const rate = realism.lateFillRate ?? 0;
  return rate > 0 && seededDraw(realism.seed ?? 1, `late:${key}`) < rate;
}
