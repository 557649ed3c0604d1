/**
 * Metrics as one `Float64Array` for the trip from a worker thread back to the pool: a transferred
 * buffer crosses without a copy, where an array of objects is serialized field by field in the
 * worker and rebuilt field by field on the calling thread (20,000 metrics took about 0.1 s each way,
 * the calling thread's share competing with the workers for the cores). Nineteen numbers per
 * backtest, in `METRIC_FIELDS` order; `null` is NaN, which no metric can be (every number is finite).
 */

import { QuantShiftError } from '../core/errors.js';
import type { Metrics } from '../core/metrics/index.js';
import { METRIC_NAMES } from '../core/research/objective.js';

/** A metric that cannot be packed (NaN, which would read back as null), or a buffer of the wrong length. */
export class MetricsPackingError extends QuantShiftError {}

/** The fields of {@link Metrics} (the objective's `METRIC_NAMES`), in the order `metricsOfCurve` writes them (so JSON text is unchanged). */
export const METRIC_FIELDS = METRIC_NAMES;

// Every field of Metrics is listed: a field added to Metrics and not here fails the type check.
type Unlisted = Exclude<keyof Metrics, (typeof METRIC_FIELDS)[number]>;
const everyFieldListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyFieldListed;

const WIDTH = METRIC_FIELDS.length;

/** The metrics, `METRIC_FIELDS.length` numbers each, `null` as NaN. */
export function packMetrics(metrics: readonly Metrics[]): Float64Array {
  const out = new Float64Array(metrics.length * WIDTH);
  let at = 0;
  for (const m of metrics) {
    for (const field of METRIC_FIELDS) {
      const value = m[field];
      if (value === null) {
        out[at++] = Number.NaN;
      } else if (Number.isNaN(value)) {
        throw new MetricsPackingError(`metric ${field} is NaN: it would read back as null`);
      } else {
        out[at++] = value;
      }
    }
  }
  return out;
}

const orNull = (value: number): number | null => (Number.isNaN(value) ? null : value);

/** The metrics {@link packMetrics} packed, equal field for field (`-0` included). */
export function unpackMetrics(packed: Float64Array): Metrics[] {
  if (packed.length % WIDTH !== 0) {
    throw new MetricsPackingError(`packed metrics: ${packed.length} numbers is not a multiple of ${WIDTH}`);
  }
  const out: Metrics[] = new Array(packed.length / WIDTH);
  for (let k = 0, p = 0; p < packed.length; k++, p += WIDTH) {
    out[k] = {
      trades: packed[p] as number,
      returnPct: packed[p + 1] as number,
      cagrPct: orNull(packed[p + 2] as number),
      volatilityPct: orNull(packed[p + 3] as number),
      equityFinal: packed[p + 4] as number,
      equityPeak: packed[p + 5] as number,
      maxDrawdownPct: packed[p + 6] as number,
      maxDrawdownDays: packed[p + 7] as number,
      winRatePct: orNull(packed[p + 8] as number),
      profitFactor: orNull(packed[p + 9] as number),
      avgWin: orNull(packed[p + 10] as number),
      avgLoss: orNull(packed[p + 11] as number),
      expectancy: orNull(packed[p + 12] as number),
      sharpe: orNull(packed[p + 13] as number),
      sortino: orNull(packed[p + 14] as number),
      calmar: orNull(packed[p + 15] as number),
      exposurePct: packed[p + 16] as number,
      buyHoldReturnPct: packed[p + 17] as number,
      kelly: orNull(packed[p + 18] as number),
    };
  }
  return out;
}
