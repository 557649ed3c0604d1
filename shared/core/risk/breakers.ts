import type { RiskRules } from './rules.js';

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

/**
 * Observes account equity at `time` on trading day `day` and trips the breakers it breaks.
 * A backtest on daily bars calls it at each close; live calls it with intraday account equity.
 * A new day starts from the previous observation's equity.
 */
export function observeEquity(
  state: RiskState,
  rules: Pick<RiskRules, 'dailyLossLimit' | 'maxDrawdown'>,
  time: number,
  day: string,
  equity: number,
): BreakerUpdate {
  // One new state object, and an events list only when a breaker trips (called at every close).
  let events: BreakerEvent[] | undefined;
  const newDay = state.day !== day;
  const dayStartEquity = !newDay || state.day === null ? state.dayStartEquity : state.lastEquity;
  let drawdownHalt = newDay
    ? state.drawdownHalt && { ...state.drawdownHalt, sessions: state.drawdownHalt.sessions + 1 }
    : state.drawdownHalt;
  let dailyLossTrippedOn = state.dailyLossTrippedOn;
  const dailyLoss = (dayStartEquity - equity) / dayStartEquity;
  if (dailyLossTrippedOn !== day && dailyLoss >= rules.dailyLossLimit) {
    dailyLossTrippedOn = day;
    events = [
      {
        time,
        breaker: 'daily-loss',
        action: 'trip',
        reason: `daily loss ${pct(dailyLoss)}% ≥ limit ${pct(rules.dailyLossLimit)}%`,
        figures: {
          dayStartEquity,
          equity,
          lossPct: pct(dailyLoss),
          limitPct: pct(rules.dailyLossLimit),
        },
      },
    ];
  }
  const highWaterMark = Math.max(state.highWaterMark, equity);
  const drawdown = (highWaterMark - equity) / highWaterMark;
  if (drawdownHalt === null && drawdown >= rules.maxDrawdown) {
    drawdownHalt = { since: time, day, sessions: 0 };
    events = [
      ...(events ?? []),
      {
        time,
        breaker: 'drawdown',
        action: 'trip',
        reason: `drawdown ${pct(drawdown)}% from the high-water mark ≥ limit ${pct(rules.maxDrawdown)}%`,
        figures: { highWaterMark, equity, drawdownPct: pct(drawdown), limitPct: pct(rules.maxDrawdown) },
      },
    ];
  }
  return {
    state: {
      ...state,
      day,
      dayStartEquity,
      drawdownHalt,
      dailyLossTrippedOn,
      highWaterMark,
      lastEquity: equity,
    },
    events: events ?? NO_EVENTS,
  };
}

const NO_EVENTS: readonly BreakerEvent[] = Object.freeze([]);

/**
 * The explicit, recorded reset of the drawdown breaker: the high-water mark becomes the equity at
 * the reset. A backtest calls it after the cool-off, with `by` naming that.
 */
export function resetDrawdown(
  state: RiskState,
  time: number,
  equity: number,
  by: string,
  reason: string,
): BreakerUpdate {
  if (state.drawdownHalt === null) return { state, events: [] };
  return {
    state: { ...state, drawdownHalt: null, highWaterMark: equity, lastEquity: equity },
    events: [
      {
        time,
        breaker: 'drawdown',
        action: 'reset',
        reason,
        by,
        figures: { equity, previousHighWaterMark: state.highWaterMark },
      },
    ],
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
  if (state.killSwitch !== null) return `kill switch on (${state.killSwitch.reason})`;
  if (state.drawdownHalt !== null)
    return `drawdown breaker tripped on ${state.drawdownHalt.day}, awaiting reset`;
  if (state.dailyLossTrippedOn === day) return `daily loss breaker tripped today (${day})`;
  return null;
}
