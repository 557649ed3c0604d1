/**
 * Minute bars for the local stream server to replay: read from an intraday bar file, or
 * synthesised from one daily bar.
 *
 * ## The synthesis model
 * A session of `minutes` one-minute bars (390 from 09:30 New York; 210 on an early close) is cut
 * from a seeded Gaussian random walk turned into a Brownian bridge (it starts and ends at 0), laid
 * on the straight line from the day's open to its close, and scaled separately above and below
 * that line so the path's highest point is the daily high and its lowest the daily low. Minute bar
 * i opens at the path's point i and closes at point i+1; its high and low are those two points
 * widened by a seeded fraction of the minute's move, clamped to the day's range. The day's volume
 * is spread evenly. So the minute bars reproduce the daily bar exactly (first open, last close,
 * the highest high, the lowest low) and the same seed always gives the same bars. The path is a
 * model: it says nothing about when in the day the extremes really happened.
 */
import { InvalidParameterError } from '../../core/errors.js';
import type { BarSeries } from '../../core/market/types.js';
import { loadBarsCsv } from '../fs/bars.js';
import { newYorkInstant, sessionOn } from './nyse-calendar.js';

/** One minute bar to replay, as the stream sends it (time = the minute's start). */
export interface ReplayBar {
  readonly S: string;
  readonly t: string;
  readonly o: number;
  readonly h: number;
  readonly l: number;
  readonly c: number;
  readonly v: number;
}

/** mulberry32: a small seeded generator (reproducible bars, not cryptography). */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const cents = (x: number) => Math.round(x * 100) / 100;

/** Minute bars of one session synthesised from its daily bar (see the module's model). */
export function synthesizeMinuteBars(
  symbol: string,
  date: string,
  day: {
    readonly open: number;
    readonly high: number;
    readonly low: number;
    readonly close: number;
    readonly volume: number;
  },
  seed = 1,
): ReplayBar[] {
  const session = sessionOn(date);
  if (session === undefined)
    throw new InvalidParameterError(`synthesise minute bars: ${date} is not a session`);
  const { open, high, low, close } = day;
  if (!(low > 0 && low <= Math.min(open, close) && high >= Math.max(open, close))) {
    throw new InvalidParameterError(
      `synthesise minute bars: ${symbol} ${date}: open/close outside [low, high]`,
    );
  }
  const start = newYorkInstant(date, session.open);
  const minutes = Math.round((newYorkInstant(date, session.close) - start) / 60_000);
  const random = generator(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const walk = [0];
  for (let i = 1; i <= minutes; i++) walk.push((walk[i - 1] as number) + gauss());
  const end = walk[minutes] as number;
  const bridge = walk.map((w, i) => w - (i / minutes) * end);
  const line = (i: number) => open + ((close - open) * i) / minutes;
  // Scale the excursions above and below the line so the extremes land on the high and the low.
  let up = 0;
  let down = 0;
  for (const [i, b] of bridge.entries()) {
    if (b > 0) up = Math.max(up, b / Math.max(1e-12, high - line(i)));
    if (b < 0) down = Math.max(down, -b / Math.max(1e-12, line(i) - low));
  }
  const path = bridge.map((b, i) => {
    const p = line(i) + (b > 0 ? (up > 0 ? b / up : 0) : down > 0 ? b / down : 0);
    return Math.min(high, Math.max(low, p));
  });
  const bars: ReplayBar[] = [];
  const volume = Math.floor(day.volume / minutes);
  for (let i = 0; i < minutes; i++) {
    const o = cents(path[i] as number);
    const c = cents(path[i + 1] as number);
    const move = Math.abs(c - o);
    bars.push({
      S: symbol,
      t: new Date(start + i * 60_000).toISOString(),
      o,
      h: cents(Math.min(high, Math.max(o, c) + random() * move * 0.5)),
      l: cents(Math.max(low, Math.min(o, c) - random() * move * 0.5)),
      c,
      v: volume,
    });
  }
  // The extremes exactly: the minutes where the path peaked and bottomed carry the day's high and low.
  const peak = path.indexOf(Math.max(...path));
  const trough = path.indexOf(Math.min(...path));
  const at = (i: number) => bars[Math.min(minutes - 1, Math.max(0, i === minutes ? i - 1 : i))] as ReplayBar;
  Object.assign(at(peak), { h: cents(high) });
  Object.assign(at(trough), { l: cents(low) });
  const first = bars[0] as ReplayBar;
  const last = bars[minutes - 1] as ReplayBar;
  Object.assign(first, {
    o: cents(open),
    h: Math.max(first.h, cents(open)),
    l: Math.min(first.l, cents(open)),
  });
  Object.assign(last, {
    c: cents(close),
    h: Math.max(last.h, cents(close)),
    l: Math.min(last.l, cents(close)),
  });
  return bars;
}

/**
 * The minute bars of a replay file for `symbol`: an intraday bar file (its wall-clock times read as
 * New York time; with `date`, its first day moved to that session), or a daily bar file with
 * `date` (synthesised, see the module's model).
 */
export function loadReplayBars(
  path: string,
  options: { readonly symbol: string; readonly date?: string; readonly seed?: number },
): ReplayBar[] {
  const series: BarSeries = loadBarsCsv(path, { symbol: options.symbol });
  if (!series.intraday) {
    if (options.date === undefined) {
      throw new InvalidParameterError(
        `${path}: daily bars; give the session --date to synthesise its minutes`,
      );
    }
    const day = Date.parse(`${options.date}T00:00:00Z`);
    const i = series.time.indexOf(day);
    if (i < 0) throw new InvalidParameterError(`${path}: no bar on ${options.date}`);
    return synthesizeMinuteBars(
      options.symbol,
      options.date,
      {
        open: series.open[i] as number,
        high: series.high[i] as number,
        low: series.low[i] as number,
        close: series.close[i] as number,
        volume: series.volume[i] as number,
      },
      options.seed ?? 1,
    );
  }
  // With `date`, the file's first day is replayed on that session (same wall-clock times).
  const firstDay = new Date(series.time[0] ?? 0).toISOString().slice(0, 10);
  const out: ReplayBar[] = [];
  for (let i = 0; i < series.time.length; i++) {
    const wall = new Date(series.time[i] as number).toISOString();
    if (options.date !== undefined && wall.slice(0, 10) !== firstDay) break;
    const instant = newYorkInstant(options.date ?? wall.slice(0, 10), wall.slice(11, 16));
    out.push({
      S: options.symbol,
      t: new Date(instant).toISOString(),
      o: series.open[i] as number,
      h: series.high[i] as number,
      l: series.low[i] as number,
      c: series.close[i] as number,
      v: series.volume[i] as number,
    });
  }
  return out;
}
