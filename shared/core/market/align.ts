/**
 * Puts several bar series on one calendar (the union of their timestamps) and slices series
 * without copying.
 */
import { InvalidParameterError } from '../errors.js';
import { type Bar, type BarSeries, barAt, type MutableBarSeries } from './types.js';

/** A common calendar for several series. */
export interface AlignedCalendar {
  /** Sorted union of every series' timestamps (each timestamp once). */
  readonly time: Float64Array;
  /**
   * One array per input series (same order), one slot per calendar entry: the index of the
   * series' bar at that time, or -1 when the series has no bar then.
   */
  readonly index: Int32Array[];
}

/**
 * Aligns series on the sorted union of their timestamps. Throws {@link InvalidParameterError}
 * when a series' times are not strictly increasing (a broken {@link BarSeries} invariant).
 *
 * The union is a merge of the series' times (each already sorted): no sort of every timestamp. A
 * series whose times are not strictly increasing finite non-zero numbers (the invariant broken, or
 * a time at which a sort and a merge could order -0 and +0 apart) goes the sort's way, which also
 * names the bar where the order breaks.
 */
export function alignBars(series: readonly BarSeries[]): AlignedCalendar {
  const count = series.length;
  let total = 0;
  for (let k = 0; k < count; k++) {
    const st = (series[k] as BarSeries).time;
    const n = st.length;
    let previous = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const t = st[i] as number;
      if (!(t > previous) || t === 0 || t === Number.POSITIVE_INFINITY) return alignBarsBySort(series);
      previous = t;
    }
    total += n;
  }
  if (count > 0 && sameTimes(series)) {
    // Every series on the same times (one exchange's sessions): the calendar is those times.
    const length = (series[0] as BarSeries).time.length;
    // Each series' own index array, views of one buffer (one allocation, not one per series).
    const buffer = new ArrayBuffer(length * count * 4);
    const ramp = new Int32Array(buffer, 0, length);
    for (let i = 0; i < length; i++) ramp[i] = i;
    const index: Int32Array[] = [ramp];
    for (let k = 1; k < count; k++) {
      const copy = new Int32Array(buffer, k * length * 4, length);
      copy.set(ramp);
      index.push(copy);
    }
    return { time: (series[0] as BarSeries).time.slice(), index };
  }
  const all = new Float64Array(total);
  // Each series' time at its head, +Infinity once it is used up.
  const times: Float64Array[] = [];
  const lengths = new Int32Array(count);
  for (let k = 0; k < count; k++) {
    const st = (series[k] as BarSeries).time;
    times.push(st);
    lengths[k] = st.length;
  }
  const heads = new Int32Array(count);
  const at = new Float64Array(count);
  for (let k = 0; k < count; k++) {
    at[k] = (lengths[k] as number) > 0 ? ((times[k] as Float64Array)[0] as number) : Number.POSITIVE_INFINITY;
  }
  let unique = 0;
  for (;;) {
    let min = Number.POSITIVE_INFINITY;
    for (let k = 0; k < count; k++) if ((at[k] as number) < min) min = at[k] as number;
    if (min === Number.POSITIVE_INFINITY) break;
    all[unique++] = min;
    for (let k = 0; k < count; k++) {
      if (at[k] !== min) continue;
      const head = (heads[k] as number) + 1;
      heads[k] = head;
      at[k] =
        head < (lengths[k] as number)
          ? ((times[k] as Float64Array)[head] as number)
          : Number.POSITIVE_INFINITY;
    }
  }
  return indexSlots(series, all.slice(0, unique));
}

/** Whether every series has the first one's times. */
function sameTimes(series: readonly BarSeries[]): boolean {
  const first = (series[0] as BarSeries).time;
  for (let k = 1; k < series.length; k++) {
    const st = (series[k] as BarSeries).time;
    if (st.length !== first.length) return false;
    for (let i = 0; i < st.length; i++) if (st[i] !== first[i]) return false;
  }
  return true;
}

/** {@link alignBars} by sorting every timestamp (a series out of order among them). */
function alignBarsBySort(series: readonly BarSeries[]): AlignedCalendar {
  let total = 0;
  for (const s of series) total += s.time.length;
  const all = new Float64Array(total);
  let at = 0;
  for (const s of series) {
    all.set(s.time, at);
    at += s.time.length;
  }
  all.sort();
  let unique = 0;
  for (let i = 0; i < total; i++) {
    const t = all[i] as number;
    if (unique === 0 || t !== all[unique - 1]) all[unique++] = t;
  }
  return indexSlots(series, all.slice(0, unique));
}

/** Each series' bar index at every slot of the calendar `time` (-1: no bar then). */
function indexSlots(series: readonly BarSeries[], time: Float64Array): AlignedCalendar {
  const unique = time.length;
  const index: Int32Array[] = [];
  for (const s of series) {
    const slots = new Int32Array(unique);
    const st = s.time;
    const n = st.length;
    let j = 0;
    for (let k = 0; k < unique; k++) {
      if (j < n && st[j] === time[k]) slots[k] = j++;
      else slots[k] = -1;
    }
    if (j !== n) {
      throw new InvalidParameterError(`${s.symbol}: bar times are not strictly increasing (at bar ${j})`);
    }
    index.push(slots);
  }
  return { time, index };
}

const sharedCalendars = new WeakMap<readonly BarSeries[], AlignedCalendar>();

/**
 * {@link alignBars}, computed once per array of series (by identity) and shared by every caller
 * that passes the same array: a sweep's combinations all backtest the same portfolio. The calendar
 * is shared, so callers must only read it.
 */
export function sharedCalendar(series: readonly BarSeries[]): AlignedCalendar {
  let calendar = sharedCalendars.get(series);
  if (calendar === undefined) {
    calendar = alignBars(series);
    sharedCalendars.set(series, calendar);
  }
  return calendar;
}

/**
 * Bars `[fromIndex, toIndexExclusive)` of a series as subarray views of the same buffers (no
 * copy; writes show through). `intraday` is inherited. Throws `RangeError` on bounds outside
 * `0 <= fromIndex <= toIndexExclusive <= length` or non-integer bounds (a caller bug).
 */
export function sliceSeries(series: BarSeries, fromIndex: number, toIndexExclusive: number): BarSeries {
  const n = series.time.length;
  if (
    !Number.isInteger(fromIndex) ||
    !Number.isInteger(toIndexExclusive) ||
    fromIndex < 0 ||
    fromIndex > toIndexExclusive ||
    toIndexExclusive > n
  ) {
    throw new RangeError(
      `sliceSeries(${series.symbol}): [${fromIndex}, ${toIndexExclusive}) is not a range within 0..${n}`,
    );
  }
  const sub = (a: Float64Array): Float64Array => a.subarray(fromIndex, toIndexExclusive);
  const out: MutableBarSeries = {
    symbol: series.symbol,
    time: sub(series.time),
    open: sub(series.open),
    high: sub(series.high),
    low: sub(series.low),
    close: sub(series.close),
    volume: sub(series.volume),
    intraday: series.intraday,
  };
  if (series.adjClose !== undefined) out.adjClose = sub(series.adjClose);
  return out;
}

/**
 * The first index `i` with `time[i] >= t` in a sorted array (binary search); `time.length`
 * when every timestamp is before `t`.
 */
export function indexAtOrAfter(time: Float64Array, t: number): number {
  let lo = 0;
  let hi = time.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((time[mid] as number) < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The bar of series `k` at calendar slot `slot` (undefined: that series has no bar then). */
export function barAtSlot(
  series: readonly BarSeries[],
  calendar: AlignedCalendar,
  k: number,
  slot: number,
): Bar | undefined {
  const i = (calendar.index[k] as Int32Array)[slot] as number;
  return i < 0 ? undefined : barAt(series[k] as BarSeries, i);
}
