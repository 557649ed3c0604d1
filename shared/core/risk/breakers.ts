import type { Writable } from '../writable.js';
import {
  type BreakerScalars,
  breakerScalars,
  breakerStep,
  DAILY_LOSS_TRIP,
  DRAWDOWN_RESET,
  DRAWDOWN_TRIP,
  NO_DAY,
  resetHalt,
} from './breaker-step.js';
import type { RiskRules } from './rules.js';
import { UNWORDED_REFUSAL } from './sizing.js';

/** The circuit breakers and the kill switch. */
export type Breaker = 'daily-loss' | 'drawdown' | 'kill-switch';

/**
 * Everything the breakers need to survive a restart: plain JSON, stored in DynamoDB by the live
 * functions and carried through the backtest. Update it only through the functions below.
 */
export interface RiskState {
  /** Highest equity seen since the start or the last drawdown reset. */
  readonly highWaterMark: number;
  /** Trading day (`YYYY-MM-DD`) of the last observation. */
  readonly day: string | null;
  /** Equity at the start of `day` (the previous day's last observation). */
  readonly dayStartEquity: number;
  /** Equity at the last observation. */
  readonly lastEquity: number;
  /** Set when the daily loss breaker tripped on `day`; cleared by the next day. */
  readonly dailyLossTrippedOn: string | null;
  /** Set while the drawdown breaker holds; only an explicit reset clears it. */
  readonly drawdownHalt: { readonly since: number; readonly day: string; readonly sessions: number } | null;
  /** Set while the manual kill switch holds. */
  readonly killSwitch: Halt | null;
  /**
   * The sleeves halted by an operator (`quantshift halt --sleeve ID`), by sleeve id: each blocks
   * that sleeve's new entries only. Absent (items written before sleeves): no sleeve is halted.
   */
  readonly sleeveHalts?: Readonly<Record<string, Halt>>;
}

/** Who halted, why, and since when (epoch ms): the account's kill switch or a sleeve's halt. */
export interface Halt {
  readonly since: number;
  readonly reason: string;
  readonly by: string;
  /**
   * The kill-switch function flattened under this halt (the account's kill switch only; a plain
   * `quantshift halt` never sets it): while it holds, each risk check makes sure every position
   * still held has an exit on its way for all its shares. Absent: a halt of entries only.
   */
  readonly flatten?: true;
}

/** A trip, a reset or a kill-switch change, with its reason and figures; alerts hang on these. */
export interface BreakerEvent {
  readonly time: number;
  readonly breaker: Breaker;
  readonly action: 'trip' | 'reset';
  readonly reason: string;
  readonly figures: Readonly<Record<string, number>>;
  readonly by?: string;
  /** The sleeve a kill-switch event is about (a sleeve's halt or resume); absent: the account. */
  readonly sleeve?: string;
}

export interface BreakerUpdate {
  readonly state: RiskState;
  readonly events: readonly BreakerEvent[];
}

/** The state before the first observation. */
export function initialRiskState(equity: number): RiskState {
  return {
    highWaterMark: equity,
    day: null,
    dayStartEquity: equity,
    lastEquity: equity,
    dailyLossTrippedOn: null,
    drawdownHalt: null,
    killSwitch: null,
  };
}

const pct = (x: number) => Math.round(x * 10_000) / 100;

// `observeEquity` keys its two days relatively for the shared step: the observation's day, any
// other day (the state's, when it differs), or none.
const TODAY = 1;
const OTHER_DAY = 0;
/** The scalar state `observeEquity` and `resetDrawdown` run the shared step on (synchronous, reused). */
const scratch = breakerScalars({ dailyLossLimit: 0, maxDrawdown: 0 }, 0, 0);

const dayKey = (of: string | null, day: string) => (of === null ? NO_DAY : of === day ? TODAY : OTHER_DAY);

/** Loads `state` into the scratch state, its days keyed relative to `day`. */
function load(state: RiskState, day: string): BreakerScalars {
  const s = scratch;
  s.highWaterMark = state.highWaterMark;
  s.dayStartEquity = state.dayStartEquity;
  s.lastEquity = state.lastEquity;
  s.day = dayKey(state.day, day);
  s.lossDay = dayKey(state.dailyLossTrippedOn, day);
  s.haltSessions = state.drawdownHalt === null ? -1 : state.drawdownHalt.sessions;
  return s;
}

/**
 * Observes account equity at `time` on trading day `day` and trips the breakers it breaks
 * (`breakerStep`, the rules the fast engines run too). A backtest on daily bars calls it at each
 * close, with `autoReset` (the halt resets `sessions` sessions after its trip, `by` naming that,
 * standing in for the manual reset); live calls it with intraday account equity and no automatic
 * reset. A new day starts from the previous observation's equity.
 */
export function observeEquity(
  state: RiskState,
  rules: Pick<RiskRules, 'dailyLossLimit' | 'maxDrawdown'>,
  time: number,
  day: string,
  equity: number,
  autoReset?: { readonly sessions: number; readonly by: string },
): BreakerUpdate {
  const s = load(state, day);
  s.dailyLossLimit = rules.dailyLossLimit;
  s.maxDrawdown = rules.maxDrawdown;
  s.coolOffSessions = autoReset === undefined ? Number.POSITIVE_INFINITY : autoReset.sessions;
  const bits = breakerStep(s, TODAY, time, equity);
  const halt = state.drawdownHalt;
  // One new state object, and an events list only when a breaker trips or resets. A clone then
  // assignments, not a spread with overrides (`{ ...state, day, … }`), which V8 runs on its slow
  // path (about a microsecond a call here): the same keys in the same order, the same values.
  const next: Writable<RiskState> = { ...state };
  next.day = day;
  next.dayStartEquity = s.dayStartEquity;
  next.drawdownHalt =
    s.haltSessions < 0
      ? null
      : (bits & DRAWDOWN_TRIP) !== 0
        ? { since: time, day, sessions: 0 }
        : s.haltSessions === (halt as NonNullable<typeof halt>).sessions
          ? halt
          : { ...(halt as NonNullable<typeof halt>), sessions: s.haltSessions };
  next.dailyLossTrippedOn = s.lossDay === TODAY ? day : state.dailyLossTrippedOn;
  next.highWaterMark = s.highWaterMark;
  next.lastEquity = s.lastEquity;
  return {
    state: next,
    events: bits === 0 ? NO_EVENTS : breakerEvents(bits, s, time, equity, autoReset?.by ?? ''),
  };
}

const NO_EVENTS: readonly BreakerEvent[] = Object.freeze([]);

/**
 * The events of one `breakerStep` (its result `bits`) on the state `s` it left, at `time` and
 * `equity`: a daily-loss trip, a drawdown trip, an automatic reset by `by` (in this order).
 */
export function breakerEvents(
  bits: number,
  s: BreakerScalars,
  time: number,
  equity: number,
  by: string,
): BreakerEvent[] {
  const events: BreakerEvent[] = [];
  if ((bits & DAILY_LOSS_TRIP) !== 0) {
    const dayStartEquity = s.dayStartEquity;
    const dailyLoss = (dayStartEquity - equity) / dayStartEquity;
    events.push({
      time,
      breaker: 'daily-loss',
      action: 'trip',
      reason: `daily loss ${pct(dailyLoss)}% ≥ limit ${pct(s.dailyLossLimit)}%`,
      figures: {
        dayStartEquity,
        equity,
        lossPct: pct(dailyLoss),
        limitPct: pct(s.dailyLossLimit),
      },
    });
  }
  const reset = (bits & DRAWDOWN_RESET) !== 0;
  // The high-water mark at the observation (a reset in the same step replaced it).
  const highWaterMark = reset ? s.resetFromHighWaterMark : s.highWaterMark;
  if ((bits & DRAWDOWN_TRIP) !== 0) {
    const drawdown = (highWaterMark - equity) / highWaterMark;
    events.push({
      time,
      breaker: 'drawdown',
      action: 'trip',
      reason: `drawdown ${pct(drawdown)}% from the high-water mark ≥ limit ${pct(s.maxDrawdown)}%`,
      figures: { highWaterMark, equity, drawdownPct: pct(drawdown), limitPct: pct(s.maxDrawdown) },
    });
  }
  if (reset) {
    events.push(
      resetEvent(
        time,
        equity,
        highWaterMark,
        by,
        `${s.resetAfterSessions} sessions after the trip (stands in for the manual reset)`,
      ),
    );
  }
  return events;
}

const resetEvent = (
  time: number,
  equity: number,
  previousHighWaterMark: number,
  by: string,
  reason: string,
): BreakerEvent => ({
  time,
  breaker: 'drawdown',
  action: 'reset',
  reason,
  by,
  figures: { equity, previousHighWaterMark },
});

/**
 * The explicit, recorded reset of the drawdown breaker (`resetHalt`): the high-water mark becomes
 * the equity at the reset. The operator's `quantshift resume --drawdown` calls it.
 */
export function resetDrawdown(
  state: RiskState,
  time: number,
  equity: number,
  by: string,
  reason: string,
): BreakerUpdate {
  if (state.drawdownHalt === null) return { state, events: [] };
  const s = load(state, state.day ?? '');
  resetHalt(s, equity);
  return {
    state: { ...state, drawdownHalt: null, highWaterMark: s.highWaterMark, lastEquity: s.lastEquity },
    events: [resetEvent(time, equity, state.highWaterMark, by, reason)],
  };
}

/**
 * How a caller that runs `breakerStep` on its own scalar state names the positions `at` it gives
 * (the fast engines: a bar or a calendar slot): the position's trading day, its day key, its time.
 */
export interface BreakerPositions {
  day(at: number): string;
  key(at: number): number;
  time(at: number): number;
}

/** The positions of a fast engine: its bars or calendar slots, with their days, day numbers and times. */
export function breakerPositions(
  days: { day(at: number): string; readonly dayNumber: Int32Array },
  time: ArrayLike<number>,
): BreakerPositions {
  const dayNumber = days.dayNumber;
  return {
    day: (at) => days.day(at),
    key: (at) => dayNumber[at] as number,
    time: (at) => time[at] as number,
  };
}

/** Who resets a backtest's drawdown halt after its cool-off: the reset events' `by`. */
export const BACKTEST_COOL_OFF = 'backtest cool-off';

/**
 * A backtest's scalar breaker state from `equity`: the limits of `rules` (none: never stepped) and
 * the backtest's automatic reset `drawdownCoolOffDays` sessions after a drawdown trip.
 */
export function backtestBreakers(
  rules: Pick<RiskRules, 'dailyLossLimit' | 'maxDrawdown' | 'drawdownCoolOffDays'> | undefined,
  equity: number,
): BreakerScalars {
  return rules === undefined
    ? breakerScalars({ dailyLossLimit: 0, maxDrawdown: 0 }, 0, equity)
    : breakerScalars(rules, rules.drawdownCoolOffDays, equity);
}

/** The `RiskState` of a scalar state whose positions `where` names (the report's final state). */
export function riskStateOf(s: BreakerScalars, where: BreakerPositions, killSwitch: Halt | null): RiskState {
  return {
    highWaterMark: s.highWaterMark,
    day: s.day === NO_DAY ? null : where.day(s.dayAt),
    dayStartEquity: s.dayStartEquity,
    lastEquity: s.lastEquity,
    dailyLossTrippedOn: s.lossDay === NO_DAY ? null : where.day(s.lossAt),
    drawdownHalt:
      s.haltSessions < 0
        ? null
        : { since: where.time(s.haltAt), day: where.day(s.haltAt), sessions: s.haltSessions },
    killSwitch,
  };
}

/** Turns the manual kill switch on (`halt`) or off (`resume`). */
export function setKillSwitch(
  state: RiskState,
  on: boolean,
  time: number,
  by: string,
  reason: string,
): BreakerUpdate {
  if (on === (state.killSwitch !== null)) return { state, events: [] };
  return {
    state: { ...state, killSwitch: on ? { since: time, reason, by } : null },
    events: [{ time, breaker: 'kill-switch', action: on ? 'trip' : 'reset', reason, by, figures: {} }],
  };
}

/**
 * Halts (`on`) or resumes one sleeve: its new entries are blocked while the halt holds; the
 * account's kill switch and the other sleeves are untouched. Already as asked: no change, no event.
 */
export function setSleeveHalt(
  state: RiskState,
  sleeve: string,
  on: boolean,
  time: number,
  by: string,
  reason: string,
): BreakerUpdate {
  const halts = state.sleeveHalts ?? {};
  if (on === (halts[sleeve] !== undefined)) return { state, events: [] };
  const { [sleeve]: _cleared, ...others } = halts;
  return {
    state: { ...state, sleeveHalts: on ? { ...halts, [sleeve]: { since: time, reason, by } } : others },
    events: [
      { time, breaker: 'kill-switch', action: on ? 'trip' : 'reset', reason, by, figures: {}, sleeve },
    ],
  };
}

/** Why a sleeve's new entries are blocked by its own halt, or `null` (the account's blocks aside). */
export function sleeveEntryBlock(state: RiskState, sleeve: string): string | null {
  const halt = state.sleeveHalts?.[sleeve];
  return halt === undefined ? null : `sleeve ${sleeve} halted (${halt.reason})`;
}

/**
 * Whether a new entry may be placed now, or the reason it may not. Breakers and the kill switch
 * block entries only: exits, stop management and reconciliation go on.
 */
export function entryBlock(state: RiskState, day: string): string | null {
  if (state.killSwitch !== null) return killSwitchBlock(state.killSwitch);
  if (state.drawdownHalt !== null) return drawdownBlock(state.drawdownHalt.day);
  if (state.dailyLossTrippedOn === day) return dailyLossBlock(day);
  return null;
}

/**
 * `entryBlock` of a close that ran `breakerStep` on `s` at position `at` (the fast engines), as
 * `entryBlock(riskStateOf(s, where, killSwitch), where.day(at))` says it, without materializing the
 * state: the day strings are made only for a block's reason. With `explain` false (a decision that
 * records no refusal, so reads no reason) a block is {@link UNWORDED_REFUSAL}: nothing is built.
 */
export function scalarEntryBlock(
  s: BreakerScalars,
  at: number,
  where: BreakerPositions,
  killSwitch: Halt | null,
  explain: boolean,
): string | null {
  // After the step at `at`, `s.day` is `at`'s day: a loss trip keyed the same is today's.
  const lossToday = s.lossDay === s.day && s.day !== NO_DAY;
  if (!explain) return killSwitch !== null || s.haltSessions >= 0 || lossToday ? UNWORDED_REFUSAL : null;
  if (killSwitch !== null) return killSwitchBlock(killSwitch);
  if (s.haltSessions >= 0) return drawdownBlock(where.day(s.haltAt));
  if (lossToday) return dailyLossBlock(where.day(at));
  return null;
}

const killSwitchBlock = (halt: Halt) => `kill switch on (${halt.reason})`;
const drawdownBlock = (day: string) => `drawdown breaker tripped on ${day}, awaiting reset`;
const dailyLossBlock = (day: string) => `daily loss breaker tripped today (${day})`;
