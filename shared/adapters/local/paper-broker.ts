/**
 * The local paper broker behind the local Alpaca server's trading endpoints: one cash account, its
 * orders, positions and activities, moved by a simulated clock the caller controls, with prices
 * from daily bar files. It speaks Alpaca's v2 wire shapes (snake_case, decimals as strings).
 *
 * ## The daily model
 * Each session of the NYSE calendar ({@link sessionOn}) is two price events for every symbol that
 * has a bar that day: the **open** at 09:30 New York (the bar's open is the price) and the **close**
 * at 16:00, or 13:00 on an early close (the bar's high and low are what happened in between, the
 * close is the last price). The clock only moves forward; {@link PaperBroker.setTime} runs every
 * event it passes, in order. The fill rules are the backtest's (docs/backtest.md), with its slippage
 * when `slippageBps` is set (market, stop and trailing-stop fills move against the order by that
 * many basis points; limit and stop-limit fills do not), none by default:
 *
 * - **At the open**: market orders (day, gtc, opg) fill at the open; a limit fills at the open when
 *   the open is at or better than the limit; a stop (or trailing stop, at its level from the earlier
 *   bars) that the open gapped through fills at the open; a bracket's stop-loss gapped through fills
 *   at the open, else a take-profit the open went through fills at the open. An `opg` order not
 *   filled at its open is canceled.
 * - **At the close** (the bar's range): limits fill at the limit when the range reaches it, stops at
 *   the stop, stop-limits as the backtest says, trailing stops at their level (then the level ratchets
 *   with the bar's high for a sell, its low for a buy, never loosening); when one bar reaches both
 *   legs of a bracket, the **stop wins**. `cls` orders fill at the close. Then day orders expire.
 * - **Submitted in session** (open <= now < close, the symbol has a bar today): the last price is the
 *   open; a market order, a marketable limit or a stop the price is already through fills at once at
 *   that price; the rest wait for the close event (the bar's range counts as coming after them).
 * - **Submitted outside a session**: everything waits for the next open. Day orders submitted after
 *   a close are for the next session.
 * - **Bracket legs** are held until the entry has filled completely. An entry filled at the open
 *   (or at once in session) has live legs on the same bar: they are checked at once at the fill
 *   price (a stop-loss at or through it fills there, as the backtest's gap rule), then against the
 *   bar's range at the close. An entry filled at a close (intrabar) has live legs from the next
 *   open. Legs take the parent's time in force, as at Alpaca (a day bracket's legs expire at the
 *   close). Canceling a leg cancels its sibling; canceling the entry cancels its legs.
 * - `ioc` / `fok`: filled whole at their first price event when marketable, else canceled.
 *
 * ## Partial fills (opt-in, {@link PartialFillRule})
 * With a fraction f for a symbol, a fill at the open (or at once in session) of an order with
 * leaves >= 2 takes floor(f x leaves) shares (at least 1, at most leaves - 1); the order is
 * `partially_filled` until the same session's close, where the rest fills at the close price (for a
 * limit-priced order, capped at its limit: the open already traded through it). Fills found at the
 * close (intrabar) are never split. A bracket's legs are armed once its entry is complete.
 *
 * ## Account
 * A cash account (no margin, multiplier 1). Cash moves by each fill's notional rounded to the cent.
 * Equity is cash plus positions marked at the last price the clock has passed (the open during a
 * session, the close after it); `last_equity` is the equity at the last close before today's New
 * York date (the starting cash before any). Buying power is cash less twice the value of shorts
 * (the backtest's rule) less what open buy orders may cost (leaves x limit, stop or last price),
 * never below 0; a buy that costs more at submission is refused with 403. Shorts are allowed:
 * selling more than is held opens one.
 *
 * ## Corporate actions (opt-in, {@link CorporateAction})
 * Applied at the open of their date, before the fills: a split multiplies the position and the
 * leaves of open orders by the ratio and divides prices (reported as Alpaca does, a pair of SPLIT
 * activities: REMOVE the old quantity, ADD the new one; listed late with `listedOn`); a dividend pays qty x amount in cash
 * (charged on a short), reported as DIV. The bundled bar files are already adjusted, so none is
 * configured by default.
 */
import { createHash, randomUUID } from 'node:crypto';
import * as z from 'zod';
import { InvalidParameterError, QuantShiftError } from '../../core/errors.js';
import {
  adversePrice,
  limitMarketable,
  limitReached,
  slippageFraction,
  slips,
  stopReached,
  stopTriggered,
  tighterStop,
  trailingLevel,
} from '../../core/execution/fill-rules.js';
import type { BarSeries } from '../../core/market/types.js';
import {
  checkExecutionRealism,
  type ExecutionRealism,
  openAuctionPrice,
  rejectsOrder,
  reportsLate,
} from './execution-realism.js';
import {
  CALENDAR_FIRST_YEAR,
  CALENDAR_LAST_YEAR,
  formatNewYork,
  newYorkInstant,
  newYorkTime,
  nextSessionClosingAfter,
  nextSessionOpeningAfter,
  parseDate,
  type Session,
  sessionOn,
  settlementDate,
  tradingDays,
} from './nyse-calendar.js';

/** Partial fills: one fraction for every symbol, or a fraction per symbol (upper case). */
export type PartialFillRule = number | Readonly<Record<string, number>>;

/** A corporate action the broker applies at the open of `date` (a session, `YYYY-MM-DD`). */
export type CorporateAction =
  | {
      readonly kind: 'split';
      readonly symbol: string;
      readonly date: string;
      readonly ratio: number;
      /**
       * The day its activities are first listed, from that New York midnight on (default: its
       * date, at the open): a split the broker reports late. The position changes at `date`'s open.
       */
      readonly listedOn?: string;
    }
  | { readonly kind: 'dividend'; readonly symbol: string; readonly date: string; readonly amount: number };

export interface PaperBrokerOptions {
  /** Where the simulated clock starts (ISO 8601); default: the machine's clock at construction. */
  readonly startTime?: string;
  /** Starting cash in dollars (default 100000). */
  readonly initialCash?: number;
  readonly partialFill?: PartialFillRule;
  readonly corporateActions?: readonly CorporateAction[];
  /**
   * Adverse slippage in basis points on market, stop and trailing-stop fills, as the backtest
   * applies it (config `costs.slippageBps`), so that a replay's fills and equity equal the
   * backtest's. Default 0.
   */
  readonly slippageBps?: number;
  /**
   * Rehearsal realism around the fill rule (opening-auction slippage, rejects, late fill reports),
   * off by default: see `execution-realism.ts`.
   */
  readonly realism?: ExecutionRealism;
}

/** A request the broker refuses, with Alpaca's HTTP status and error code. */
export class PaperBrokerRequestError extends QuantShiftError {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const reject = (status: number, code: number, message: string): PaperBrokerRequestError =>
  new PaperBrokerRequestError(status, code, message);

type Side = 'buy' | 'sell';
type OrderType = 'market' | 'limit' | 'stop' | 'stop_limit' | 'trailing_stop';
type Tif = 'day' | 'gtc' | 'opg' | 'cls' | 'ioc' | 'fok';
type Status =
  | 'accepted'
  | 'new'
  | 'held'
  | 'partially_filled'
  | 'filled'
  | 'canceled'
  | 'expired'
  | 'rejected';

const WORKING: ReadonlySet<Status> = new Set(['accepted', 'new', 'held', 'partially_filled']);

interface Order {
  readonly id: string;
  readonly clientOrderId: string;
  readonly symbol: string;
  readonly side: Side;
  readonly type: OrderType;
  readonly tif: Tif;
  readonly orderClass: 'simple' | 'bracket';
  /** A bracket leg's role; undefined for other orders. */
  readonly role: 'take_profit' | 'stop_loss' | undefined;
  qty: number;
  limitPrice: number | null;
  /** For a trailing stop: its current level. */
  stopPrice: number | null;
  trailPrice: number | null;
  readonly trailPercent: number | null;
  /** A trailing stop's best price so far (high-water mark for a sell, low for a buy). */
  hwm: number | null;
  status: Status;
  filledQty: number;
  /** Mean fill price, kept incrementally (a single fill's is its price exactly); 0 before any. */
  filledAvgPrice: number;
  readonly createdAt: number;
  updatedAt: number;
  filledAt: number | null;
  expiredAt: number | null;
  canceledAt: number | null;
  /**
   * The order takes part in price events at or after this instant (held legs: Infinity). An order
   * submitted at an event's instant came after that event (the clock had already run it); legs armed
   * by an entry's fill at one price (an open) are checked at that same price at once, as the
   * backtest checks a gap through a fresh stop; legs armed at a close are checked from the next open.
   */
  armedAt: number;
  /** A stop-limit whose stop has been reached. */
  triggered: boolean;
  /** Partial fill in progress: the rest fills at this session's close. */
  remainderAtClose: boolean;
  readonly legs: Order[];
  readonly parent: Order | undefined;
}

interface Position {
  qty: number;
  avgEntryPrice: number;
}

type Activity =
  | {
      readonly kind: 'fill';
      readonly id: string;
      readonly time: number;
      readonly order: Order;
      readonly qty: number;
      readonly price: number;
      readonly cumQty: number;
      readonly leavesQty: number;
      readonly status: Status;
      /** When the activity is listed: its time, or later for a fill reported late (realism). */
      readonly reportedAt: number;
    }
  | {
      readonly kind: 'split';
      readonly id: string;
      readonly time: number;
      readonly date: string;
      readonly symbol: string;
      readonly qty: number;
      readonly price: number;
      readonly description: string;
      /** When the activity is listed: its time, or later for a split reported late. */
      readonly reportedAt: number;
    }
  | {
      readonly kind: 'dividend';
      readonly id: string;
      readonly time: number;
      readonly date: string;
      readonly symbol: string;
      readonly qty: number;
      readonly amount: number;
      readonly netCents: number;
    };

const EPSILON = 1e-9;
const MAX_CLIENT_ORDER_ID = 128;
const ORDER_LIST_DEFAULT = 50;
const ORDER_LIST_MAX = 500;
const ACTIVITY_PAGE_DEFAULT = 100;
const ACTIVITY_PAGE_MAX = 100;
/** `opg` orders are refused from 09:28 to 19:00 New York on a session day, as at Alpaca. */
const OPG_CUTOFF_MINUTES = 9 * 60 + 28;
const EVENING_MINUTES = 19 * 60;
/** `cls` orders are refused from 10 minutes before the close to 19:00. */
const CLS_CUTOFF_BEFORE_CLOSE_MS = 10 * 60_000;

// ---------------------------------------------------------------------------------------------
// The order request, as Alpaca takes it

/** A decimal as Alpaca accepts it: a JSON number or a numeric string. */
const wireDecimal = z
  .union([z.number(), z.string().regex(/^[-+]?(\d+\.?\d*|\.\d+)$/, 'not a decimal number')])
  .transform(Number)
  .pipe(z.number());

const orderRequestSchema = z.object({
  symbol: z.string().min(1),
  qty: wireDecimal.optional(),
  notional: wireDecimal.optional(),
  side: z.enum(['buy', 'sell']),
  type: z.enum(['market', 'limit', 'stop', 'stop_limit', 'trailing_stop']),
  time_in_force: z.enum(['day', 'gtc', 'opg', 'cls', 'ioc', 'fok']),
  limit_price: wireDecimal.optional(),
  stop_price: wireDecimal.optional(),
  trail_price: wireDecimal.optional(),
  trail_percent: wireDecimal.optional(),
  extended_hours: z.boolean().optional(),
  client_order_id: z.string().min(1).max(MAX_CLIENT_ORDER_ID).optional(),
  order_class: z.enum(['simple', 'bracket', 'oco', 'oto', 'mleg', '']).optional(),
  take_profit: z.object({ limit_price: wireDecimal }).optional(),
  stop_loss: z.object({ stop_price: wireDecimal, limit_price: wireDecimal.optional() }).optional(),
  position_intent: z.string().optional(),
});

type OrderRequest = z.infer<typeof orderRequestSchema>;

/** Alpaca's pricing rule: whole cents at or above $1, 4 decimals below. */
function checkTick(field: string, price: number): void {
  if (!(price > 0)) throw reject(422, 40010001, `${field} must be > 0`);
  const decimals = price >= 1 ? 2 : 4;
  const scaled = price * 10 ** decimals;
  if (Math.abs(scaled - Math.round(scaled)) > 1e-6) {
    throw reject(
      422,
      42210000,
      `invalid ${field} ${price}. sub-penny increment does not fulfill minimum pricing criteria`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** Half away from zero, to the cent. */
function toCents(dollars: number): number {
  return Math.sign(dollars) * Math.round(Math.abs(dollars) * 100 + 1e-7);
}

function dollars(cents: number): string {
  return (cents / 100).toFixed(2);
}

/** A decimal string that reads back to the same number, without an exponent. */
function decimal(value: number): string {
  const text = String(value);
  if (!/e/i.test(text)) return text;
  return value.toFixed(20).replace(/0+$/, '').replace(/\.$/, '');
}

function iso(instant: number): string {
  return new Date(instant).toISOString();
}

function optionalIso(instant: number | null): string | null {
  return instant === null ? null : iso(instant);
}

/** Alpaca's activity id: `YYYYMMDDHHMMSSmmm::<uuid>`. */
function activityId(instant: number): string {
  return `${iso(instant).replace(/[-:TZ.]/g, '')}::${randomUUID()}`;
}

/** A stable UUID-shaped id per symbol. */
function assetId(symbol: string): string {
  const hex = createHash('sha1').update(`asset:${symbol}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** Index of the last bar dated on or before `day` (00:00 UTC), -1 if none. */
function lastBarOnOrBefore(series: BarSeries, day: number): number {
  let lo = 0;
  let hi = series.time.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if ((series.time[mid] as number) <= day) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

interface DayBar {
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
}

// ---------------------------------------------------------------------------------------------
// The broker

export class PaperBroker {
  private clock: number;
  private cashCents: number;
  private readonly initialCents: number;
  private partialFill: PartialFillRule | undefined;
  private readonly slip: number;
  private readonly realism: ExecutionRealism;
  private readonly corporateActions: readonly CorporateAction[];
  /** Every top-level order, in creation order. */
  private readonly orders: Order[] = [];
  private readonly byId = new Map<string, Order>();
  private readonly byClientId = new Map<string, Order>();
  /** Top-level orders with something still working (the order or one of its legs). */
  private open: Order[] = [];
  private readonly positions = new Map<string, Position>();
  private readonly activityLog: Activity[] = [];
  /** Realism: the orders refused at submission, for the state a rehearsal keeps. */
  readonly refused: { clientOrderId: string; symbol: string; side: Side; qty: number; at: number }[] = [];
  /** Equity (cents) at each close the clock passed, in order. */
  private readonly closes: { date: string; equityCents: number }[] = [];
  private readonly accountId = 'a0c1d2e3-0000-4000-8000-000000000001';
  private readonly createdAt: number;

  constructor(
    private readonly bars: (symbol: string) => BarSeries | null,
    options: PaperBrokerOptions = {},
  ) {
    const start = options.startTime === undefined ? Date.now() : Date.parse(options.startTime);
    if (Number.isNaN(start)) {
      throw new InvalidParameterError(`paper broker: startTime "${options.startTime}" is not ISO 8601`);
    }
    const slippageBps = options.slippageBps ?? 0;
    if (!(slippageBps >= 0 && slippageBps <= 1000)) {
      throw new InvalidParameterError(`paper broker: slippageBps ${slippageBps} must be in [0, 1000]`);
    }
    this.slip = slippageFraction(slippageBps);
    this.realism = checkExecutionRealism(options.realism ?? {});
    const cash = options.initialCash ?? 100_000;
    if (!(cash >= 0) || !Number.isFinite(cash)) {
      throw new InvalidParameterError(`paper broker: initialCash ${cash} must be a finite number >= 0`);
    }
    this.clock = start;
    this.createdAt = start;
    this.cashCents = toCents(cash);
    this.initialCents = this.cashCents;
    this.setPartialFill(options.partialFill);
    for (const action of options.corporateActions ?? []) {
      if (sessionOn(action.date) === undefined) {
        throw new InvalidParameterError(
          `paper broker: corporate action date ${action.date} is not a session`,
        );
      }
      const value = action.kind === 'split' ? action.ratio : action.amount;
      if (!(value > 0) || !Number.isFinite(value)) {
        throw new InvalidParameterError(
          `paper broker: ${action.kind} of ${action.symbol} on ${action.date}: ${value} must be > 0`,
        );
      }
      if (
        action.kind === 'split' &&
        action.listedOn !== undefined &&
        (Number.isNaN(parseDate(action.listedOn)) || action.listedOn < action.date)
      ) {
        throw new InvalidParameterError(
          `paper broker: split of ${action.symbol} on ${action.date}: listedOn ${action.listedOn} must be a date on or after it`,
        );
      }
    }
    this.corporateActions = (options.corporateActions ?? []).map((a) => ({
      ...a,
      symbol: a.symbol.toUpperCase(),
    }));
  }

  /** The simulated time, epoch ms. */
  get now(): number {
    return this.clock;
  }

  /** Sets (or clears) the partial-fill rule for the orders' future fills. */
  setPartialFill(rule: PartialFillRule | undefined): void {
    const fractions = rule === undefined ? [] : typeof rule === 'number' ? [rule] : Object.values(rule);
    for (const f of fractions) {
      if (!(f > 0 && f < 1))
        throw new InvalidParameterError(`paper broker: partial fill fraction ${f} is not in (0, 1)`);
    }
    this.partialFill =
      rule === undefined || typeof rule === 'number'
        ? rule
        : Object.fromEntries(Object.entries(rule).map(([s, f]) => [s.toUpperCase(), f]));
  }

  /** Moves the clock to `instant`, running every open and close it passes, in order. */
  setTime(instant: number): void {
    if (Number.isNaN(instant))
      throw new InvalidParameterError('paper broker: the new time is not a valid instant');
    if (instant < this.clock) {
      throw new InvalidParameterError(
        `paper broker: the clock only moves forward (now ${iso(this.clock)}, asked ${iso(instant)})`,
      );
    }
    for (;;) {
      const next = this.nextEvent();
      if (next === undefined || next.at > instant) break;
      this.clock = next.at;
      if (next.kind === 'open') this.onOpen(next.session);
      else this.onClose(next.session);
    }
    this.clock = instant;
  }

  private nextEvent(): { at: number; kind: 'open' | 'close'; session: Session } | undefined {
    const year = Number(newYorkTime(this.clock).date.slice(0, 4));
    if (year > CALENDAR_LAST_YEAR || year < CALENDAR_FIRST_YEAR) {
      throw new InvalidParameterError(
        `paper broker: ${iso(this.clock)} is outside the calendar's years (${CALENDAR_FIRST_YEAR}..${CALENDAR_LAST_YEAR})`,
      );
    }
    const closing = nextSessionClosingAfter(this.clock);
    if (closing.openAt > this.clock) return { at: closing.openAt, kind: 'open', session: closing };
    return { at: closing.closeAt, kind: 'close', session: closing };
  }

  // -------------------------------------------------------------------------------------------
  // Prices

  private barOn(symbol: string, date: string): DayBar | undefined {
    const series = this.bars(symbol);
    if (series === null) return undefined;
    const i = lastBarOnOrBefore(series, parseDate(date));
    if (i < 0 || formatIsoDate(series.time[i] as number) !== date) return undefined;
    return {
      open: series.open[i] as number,
      high: series.high[i] as number,
      low: series.low[i] as number,
      close: series.close[i] as number,
    };
  }

  /** The last price the clock has passed: today's open in session, else the latest close. */
  lastPrice(symbol: string): number | undefined {
    const series = this.bars(symbol);
    if (series === null) return undefined;
    const today = newYorkTime(this.clock).date;
    const i = lastBarOnOrBefore(series, parseDate(today));
    if (i < 0) return undefined;
    if (formatIsoDate(series.time[i] as number) !== today) return series.close[i] as number;
    const session = sessionOn(today);
    if (session === undefined || this.clock >= session.closeAt) return series.close[i] as number;
    if (this.clock >= session.openAt) return series.open[i] as number;
    return i > 0 ? (series.close[i - 1] as number) : undefined;
  }

  /** The close of the last bar before today's New York date. */
  private previousClose(symbol: string): number | undefined {
    const series = this.bars(symbol);
    if (series === null) return undefined;
    const today = parseDate(newYorkTime(this.clock).date);
    const i = lastBarOnOrBefore(series, today - 86_400_000);
    return i < 0 ? undefined : (series.close[i] as number);
  }

  /** Today's bar when the clock is inside its session (open <= now < close). */
  private inSessionBar(symbol: string): DayBar | undefined {
    const today = newYorkTime(this.clock).date;
    const session = sessionOn(today);
    if (session === undefined || this.clock < session.openAt || this.clock >= session.closeAt)
      return undefined;
    return this.barOn(symbol, today);
  }

  // -------------------------------------------------------------------------------------------
  // Events

  private onOpen(session: Session): void {
    this.applyCorporateActions(session);
    const at = session.openAt;
    for (const top of [...this.open]) {
      const bar = this.barOn(top.symbol, session.date);
      for (const order of [top, ...top.legs]) {
        if (order.status === 'accepted') {
          order.status = 'new';
          order.updatedAt = at;
        }
      }
      if (bar === undefined) {
        this.cancelUnfilledAuctionOrders(top, at);
        continue;
      }
      this.atPrice(top, bar.open, at);
      this.legsAtPrice(top, bar.open, at);
    }
    this.prune();
  }

  private onClose(session: Session): void {
    const at = session.closeAt;
    for (const top of [...this.open]) {
      const bar = this.barOn(top.symbol, session.date);
      if (bar !== undefined) {
        // Legs first: those of an entry that completes at this close are armed from the next bar.
        this.legsIntrabar(top, bar, at);
        this.intrabar(top, bar, at);
      }
      for (const order of [top, ...top.legs]) {
        if (WORKING.has(order.status) && order.tif !== 'gtc' && order.createdAt < at) {
          this.finish(order, order.status === 'held' ? 'canceled' : 'expired', at);
        }
      }
    }
    this.prune();
    this.closes.push({ date: session.date, equityCents: this.equityCents() });
  }

  /** One order at a single price (an open, or the last price at submission in session). */
  private atPrice(order: Order, price: number, at: number): void {
    if (!this.isLive(order, at) || order.remainderAtClose) return;
    if (order.tif === 'cls') return;
    const buy = order.side === 'buy';
    const limitOk = (limit: number): boolean => limitMarketable(buy, price, limit);
    const stopHit = (stop: number): boolean => stopTriggered(buy, price, stop);
    switch (order.type) {
      case 'market':
        this.fill(order, price, at, true);
        break;
      case 'limit':
        if (limitOk(order.limitPrice as number)) this.fill(order, price, at, true);
        break;
      case 'stop':
        if (stopHit(order.stopPrice as number)) this.fill(order, price, at, true);
        break;
      case 'stop_limit':
        if (order.triggered || stopHit(order.stopPrice as number)) {
          order.triggered = true;
          if (limitOk(order.limitPrice as number)) this.fill(order, price, at, true);
        }
        break;
      case 'trailing_stop':
        if (order.hwm === null) {
          this.ratchet(order, price);
        } else if (stopHit(order.stopPrice as number)) {
          this.fill(order, price, at, true);
        }
        break;
    }
    this.cancelUnfilledAuctionOrders(order, at);
  }

  /** `opg`, `ioc` and `fok` orders live for one price event. */
  private cancelUnfilledAuctionOrders(order: Order, at: number): void {
    if (order.status === 'filled' || !WORKING.has(order.status) || order.remainderAtClose) return;
    if (order.tif === 'opg' || order.tif === 'ioc' || order.tif === 'fok') this.finish(order, 'canceled', at);
  }

  /** A bracket's legs at a single price: the stop-loss first (a gap through it), then the take-profit. */
  private legsAtPrice(top: Order, price: number, at: number): void {
    const stop = top.legs.find((l) => l.role === 'stop_loss');
    const target = top.legs.find((l) => l.role === 'take_profit');
    if (stop !== undefined && this.isLive(stop, at) && !stop.remainderAtClose) {
      if (stopTriggered(stop.side === 'buy', price, stop.stopPrice as number)) {
        this.fill(stop, price, at, true);
        return;
      }
    }
    if (target !== undefined && this.isLive(target, at) && !target.remainderAtClose) {
      const limit = target.limitPrice as number;
      if (limitMarketable(target.side === 'buy', price, limit)) this.fill(target, price, at, true);
    }
  }

  /** One order against a bar's range, at the close event. */
  private intrabar(order: Order, bar: DayBar, at: number): void {
    if (!this.isLive(order, at)) return;
    const buy = order.side === 'buy';
    if (order.remainderAtClose) {
      const limit = order.limitPrice;
      const capped =
        limit === null || order.type === 'stop' || order.type === 'trailing_stop' || order.type === 'market'
          ? bar.close
          : buy
            ? Math.min(bar.close, limit)
            : Math.max(bar.close, limit);
      this.fill(order, capped, at, false);
      return;
    }
    const reachesLimit = (limit: number): boolean => limitReached(buy, bar.high, bar.low, limit);
    const reachesStop = (stop: number): boolean => stopReached(buy, bar.high, bar.low, stop);
    if (order.tif === 'cls') {
      const limit = order.limitPrice;
      if (limit === null || (buy ? bar.close <= limit : bar.close >= limit))
        this.fill(order, bar.close, at, false);
      return;
    }
    switch (order.type) {
      case 'market':
        this.fill(order, bar.close, at, false);
        break;
      case 'limit':
        if (reachesLimit(order.limitPrice as number)) this.fill(order, order.limitPrice as number, at, false);
        break;
      case 'stop':
        if (reachesStop(order.stopPrice as number)) this.fill(order, order.stopPrice as number, at, false);
        break;
      case 'stop_limit': {
        const stop = order.stopPrice as number;
        const limit = order.limitPrice as number;
        if (order.triggered) {
          if (reachesLimit(limit)) this.fill(order, limit, at, false);
        } else if (reachesStop(stop)) {
          order.triggered = true;
          if (limitMarketable(buy, stop, limit)) this.fill(order, stop, at, false);
          else if (reachesLimit(limit)) this.fill(order, limit, at, false);
        }
        break;
      }
      case 'trailing_stop':
        if (order.hwm !== null && reachesStop(order.stopPrice as number)) {
          this.fill(order, order.stopPrice as number, at, false);
        } else {
          this.ratchet(order, buy ? bar.low : bar.high);
        }
        break;
    }
  }

  /** A bracket's legs against a bar's range: when both are reached, the stop wins. */
  private legsIntrabar(top: Order, bar: DayBar, at: number): void {
    const stop = top.legs.find((l) => l.role === 'stop_loss');
    const target = top.legs.find((l) => l.role === 'take_profit');
    for (const leg of [stop, target]) {
      if (leg?.remainderAtClose && this.isLive(leg, at)) {
        this.intrabar(leg, bar, at);
        return;
      }
    }
    if (stop !== undefined && this.isLive(stop, at)) {
      if (stopReached(stop.side === 'buy', bar.high, bar.low, stop.stopPrice as number)) {
        this.intrabar(stop, bar, at);
        return;
      }
    }
    if (target !== undefined && this.isLive(target, at)) this.intrabar(target, bar, at);
  }

  /** Moves a trailing stop's best price and level with a new price; the level never loosens. */
  private ratchet(order: Order, price: number): void {
    const buy = order.side === 'buy';
    const best = order.hwm === null ? price : buy ? Math.min(order.hwm, price) : Math.max(order.hwm, price);
    order.hwm = best;
    // The order's side is the position's exit: a sell protects a long.
    const level = trailingLevel(!buy, best, order.trailPrice, order.trailPercent);
    const current = order.stopPrice;
    order.stopPrice = current === null ? level : tighterStop(!buy, current, level);
  }

  private isLive(order: Order, at: number): boolean {
    return WORKING.has(order.status) && order.status !== 'held' && order.armedAt <= at;
  }

  private fraction(symbol: string): number | undefined {
    const rule = this.partialFill;
    return rule === undefined || typeof rule === 'number' ? rule : rule[symbol];
  }

  /** The backtest's slippage rule (core fill rules): market and stop fills move against the order; limits do not. */
  private slipped(order: Order, price: number): number {
    if (this.slip === 0 || !slips(order.type)) return price;
    return adversePrice(price, order.side === 'buy', this.slip);
  }

  /** Fills the order's leaves at `price` (slipped), or a first part of them when partial fills apply. */
  private fill(order: Order, marketPrice: number, at: number, splittable: boolean): void {
    // Realism: a market-on-open fill (opg orders fill only at a single price, the open) may take
    // the rehearsal's opening-auction slippage in place of the cost model's.
    const auction =
      splittable && order.tif === 'opg' && order.type === 'market'
        ? openAuctionPrice(this.realism, order.side, marketPrice, `${order.clientOrderId}#${order.filledQty}`)
        : undefined;
    const price = auction ?? this.slipped(order, marketPrice);
    const leaves = order.qty - order.filledQty;
    let qty = leaves;
    const f = this.fraction(order.symbol);
    if (splittable && f !== undefined && leaves >= 2 && order.tif !== 'ioc' && order.tif !== 'fok') {
      const part = Number.isInteger(leaves) ? Math.floor(f * leaves) : Math.round(f * leaves * 1e9) / 1e9;
      qty = Math.min(Math.max(part, 1), leaves - 1);
      order.remainderAtClose = true;
    } else {
      order.remainderAtClose = false;
    }
    this.execute(order, qty, price, at);
  }

  private execute(order: Order, qty: number, price: number, at: number): void {
    const signed = order.side === 'buy' ? qty : -qty;
    const position = this.positions.get(order.symbol) ?? { qty: 0, avgEntryPrice: 0 };
    const before = position.qty;
    const after = before + signed;
    if (before === 0 || Math.sign(before) === Math.sign(signed)) {
      // Incremental mean: a first fill's average is its price exactly.
      position.avgEntryPrice += (price - position.avgEntryPrice) * (qty / Math.abs(after));
    } else if (Math.abs(signed) > Math.abs(before) + EPSILON) {
      position.avgEntryPrice = price;
    }
    position.qty = Math.abs(after) < EPSILON ? 0 : after;
    if (position.qty === 0) this.positions.delete(order.symbol);
    else this.positions.set(order.symbol, position);
    const notional = toCents(qty * price);
    this.cashCents += order.side === 'buy' ? -notional : notional;

    order.filledQty += qty;
    order.filledAvgPrice += (price - order.filledAvgPrice) * (qty / order.filledQty);
    order.updatedAt = at;
    const complete = order.qty - order.filledQty < EPSILON;
    if (complete) {
      order.filledQty = order.qty;
      order.status = 'filled';
      order.filledAt = at;
      order.remainderAtClose = false;
      for (const leg of order.legs) {
        if (leg.status === 'held') {
          leg.status = 'new';
          leg.armedAt = at;
          leg.updatedAt = at;
        }
      }
    } else {
      order.status = 'partially_filled';
    }
    if (order.parent !== undefined) {
      for (const sibling of order.parent.legs) {
        if (sibling !== order && WORKING.has(sibling.status)) this.finish(sibling, 'canceled', at);
      }
    }
    const late = reportsLate(this.realism, `${order.clientOrderId}#${order.filledQty}`);
    this.activityLog.push({
      kind: 'fill',
      id: activityId(at),
      time: at,
      order,
      qty,
      price,
      cumQty: order.filledQty,
      leavesQty: order.qty - order.filledQty,
      status: order.status,
      // Realism: a late report is listed from the close of the session after the fill's on (a fill
      // at a close belongs to that close's session: hence at - 1).
      reportedAt: late ? nextSessionClosingAfter(nextSessionClosingAfter(at - 1).closeAt).closeAt : at,
    });
  }

  private finish(order: Order, status: 'canceled' | 'expired', at: number): void {
    order.status = status;
    order.updatedAt = at;
    order.remainderAtClose = false;
    if (status === 'canceled') order.canceledAt = at;
    else order.expiredAt = at;
    for (const leg of order.legs) {
      if (WORKING.has(leg.status)) this.finish(leg, 'canceled', at);
    }
  }

  private prune(): void {
    this.open = this.open.filter((o) => WORKING.has(o.status) || o.legs.some((l) => WORKING.has(l.status)));
  }

  private applyCorporateActions(session: Session): void {
    for (const action of this.corporateActions) {
      if (action.date !== session.date) continue;
      const position = this.positions.get(action.symbol);
      const at = session.openAt;
      if (action.kind === 'dividend') {
        if (position === undefined) continue;
        const netCents = toCents(position.qty * action.amount);
        this.cashCents += netCents;
        this.activityLog.push({
          kind: 'dividend',
          id: activityId(at),
          time: at,
          date: action.date,
          symbol: action.symbol,
          qty: position.qty,
          amount: action.amount,
          netCents,
        });
        continue;
      }
      const ratio = action.ratio;
      for (const top of this.open) {
        for (const order of [top, ...top.legs]) {
          if (order.symbol !== action.symbol || !WORKING.has(order.status)) continue;
          order.qty = order.filledQty + (order.qty - order.filledQty) * ratio;
          const scale = (p: number | null): number | null =>
            p === null ? null : Math.round((p / ratio) * 100) / 100;
          order.limitPrice = scale(order.limitPrice);
          order.stopPrice = scale(order.stopPrice);
          order.trailPrice = scale(order.trailPrice);
          order.hwm = order.hwm === null ? null : order.hwm / ratio;
        }
      }
      if (position === undefined) continue;
      const oldQty = position.qty;
      const oldPrice = position.avgEntryPrice;
      position.qty = oldQty * ratio;
      position.avgEntryPrice = oldPrice / ratio;
      const description = `From QTY:${decimal(oldQty)}, To QTY:${decimal(position.qty)}`;
      const reportedAt =
        action.listedOn === undefined ? at : Math.max(at, newYorkInstant(action.listedOn, '00:00'));
      this.activityLog.push(
        {
          kind: 'split',
          id: activityId(at),
          time: at,
          date: action.date,
          symbol: action.symbol,
          qty: -oldQty,
          price: oldPrice,
          description: `REMOVE, ${description}`,
          reportedAt,
        },
        {
          kind: 'split',
          id: activityId(at),
          time: at,
          date: action.date,
          symbol: action.symbol,
          qty: position.qty,
          price: position.avgEntryPrice,
          description: `ADD, ${description}`,
          reportedAt,
        },
      );
    }
  }

  // -------------------------------------------------------------------------------------------
  // Account

  private equityCents(): number {
    let cents = this.cashCents;
    for (const [symbol, position] of this.positions) {
      cents += toCents(position.qty * (this.lastPrice(symbol) ?? position.avgEntryPrice));
    }
    return cents;
  }

  private lastEquityCents(): number {
    const today = newYorkTime(this.clock).date;
    for (let i = this.closes.length - 1; i >= 0; i--) {
      const close = this.closes[i] as { date: string; equityCents: number };
      if (close.date < today) return close.equityCents;
    }
    return this.initialCents;
  }

  /** Cash less twice the shorts' value less what open buy orders may cost, never below 0. */
  private buyingPowerCents(): number {
    let cents = this.cashCents;
    for (const [symbol, position] of this.positions) {
      if (position.qty < 0)
        cents -= 2 * toCents(-position.qty * (this.lastPrice(symbol) ?? position.avgEntryPrice));
    }
    for (const top of this.open) {
      for (const order of [top, ...top.legs]) {
        if (order.side === 'buy' && WORKING.has(order.status) && order.status !== 'held') {
          cents -= toCents((order.qty - order.filledQty) * this.estimatedPrice(order));
        }
      }
    }
    return Math.max(0, cents);
  }

  private estimatedPrice(order: {
    symbol: string;
    limitPrice: number | null;
    stopPrice: number | null;
  }): number {
    return order.limitPrice ?? order.stopPrice ?? this.lastPrice(order.symbol) ?? 0;
  }

  account(): Record<string, unknown> {
    let longCents = 0;
    let shortCents = 0;
    for (const [symbol, position] of this.positions) {
      const value = toCents(position.qty * (this.lastPrice(symbol) ?? position.avgEntryPrice));
      if (value >= 0) longCents += value;
      else shortCents += value;
    }
    const equity = dollars(this.equityCents());
    const buyingPower = dollars(this.buyingPowerCents());
    return {
      id: this.accountId,
      account_number: 'PALOCAL001',
      status: 'ACTIVE',
      crypto_status: 'INACTIVE',
      currency: 'USD',
      cash: dollars(this.cashCents),
      portfolio_value: equity,
      equity,
      last_equity: dollars(this.lastEquityCents()),
      buying_power: buyingPower,
      regt_buying_power: buyingPower,
      daytrading_buying_power: '0',
      non_marginable_buying_power: buyingPower,
      effective_buying_power: buyingPower,
      long_market_value: dollars(longCents),
      short_market_value: dollars(shortCents),
      position_market_value: dollars(longCents - shortCents),
      initial_margin: '0',
      maintenance_margin: '0',
      last_maintenance_margin: '0',
      sma: '0',
      accrued_fees: '0',
      multiplier: '1',
      shorting_enabled: true,
      pattern_day_trader: false,
      trading_blocked: false,
      transfers_blocked: false,
      account_blocked: false,
      trade_suspended_by_user: false,
      daytrade_count: 0,
      created_at: iso(this.createdAt),
    };
  }

  positionList(): Record<string, unknown>[] {
    return [...this.positions.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([symbol, position]) => {
        const price = this.lastPrice(symbol) ?? position.avgEntryPrice;
        const previous = this.previousClose(symbol) ?? price;
        const qty = position.qty;
        const costBasis = qty * position.avgEntryPrice;
        const marketValue = qty * price;
        return {
          asset_id: assetId(symbol),
          symbol,
          exchange: 'ARCA',
          asset_class: 'us_equity',
          asset_marginable: false,
          qty: decimal(qty),
          qty_available: decimal(qty),
          avg_entry_price: decimal(position.avgEntryPrice),
          side: qty >= 0 ? 'long' : 'short',
          market_value: decimal(marketValue),
          cost_basis: decimal(costBasis),
          unrealized_pl: decimal(marketValue - costBasis),
          unrealized_plpc: decimal(costBasis === 0 ? 0 : (marketValue - costBasis) / Math.abs(costBasis)),
          unrealized_intraday_pl: decimal(qty * (price - previous)),
          unrealized_intraday_plpc: decimal(previous === 0 ? 0 : (price - previous) / previous),
          current_price: decimal(price),
          lastday_price: decimal(previous),
          change_today: decimal(previous === 0 ? 0 : (price - previous) / previous),
        };
      });
  }

  // -------------------------------------------------------------------------------------------
  // Orders

  /** `POST /v2/orders`: validates, checks buying power, creates, and fills at once when it can. */
  submitOrder(body: unknown, knownSymbol: (symbol: string) => boolean): Record<string, unknown> {
    const parsed = orderRequestSchema.safeParse(body ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue?.path.map(String).join('.') || 'body';
      throw reject(422, 40010001, `invalid ${field}: ${issue?.message ?? 'invalid request'}`);
    }
    const request = parsed.data;
    const symbol = request.symbol.trim().toUpperCase();
    if (!/^[A-Z0-9][A-Z0-9.]*$/.test(symbol) || !knownSymbol(symbol)) {
      throw reject(422, 40010001, `asset "${request.symbol}" not found`);
    }
    this.validate(request);
    const clientOrderId = request.client_order_id ?? randomUUID();
    if (this.byClientId.has(clientOrderId)) throw reject(422, 40010001, 'client_order_id must be unique');
    // Realism: an occasional market-on-open order refused, as the exchange or the broker may.
    if (request.time_in_force === 'opg' && rejectsOrder(this.realism, clientOrderId)) {
      this.refused.push({
        clientOrderId,
        symbol,
        side: request.side,
        qty: request.qty as number,
        at: this.clock,
      });
      throw reject(422, 42210000, 'order rejected: the opening auction refused it (rehearsal reject)');
    }
    const qty = request.qty as number;
    if (request.side === 'buy') {
      const cost =
        qty *
        this.estimatedPrice({
          symbol,
          limitPrice: request.limit_price ?? null,
          stopPrice: request.stop_price ?? null,
        });
      if (toCents(cost) > this.buyingPowerCents()) throw reject(403, 40310000, 'insufficient buying power');
    }

    const now = this.clock;
    const inSession = this.inSessionBar(symbol) !== undefined;
    const status: Status = inSession ? 'new' : 'accepted';
    const bracket = request.order_class === 'bracket';
    const base = {
      symbol,
      tif: request.time_in_force,
      createdAt: now,
      updatedAt: now,
      filledQty: 0,
      filledAvgPrice: 0,
      filledAt: null,
      expiredAt: null,
      canceledAt: null,
      triggered: false,
      remainderAtClose: false,
      qty,
    };
    const legs: Order[] = [];
    const order: Order = {
      ...base,
      id: randomUUID(),
      clientOrderId,
      side: request.side,
      type: request.type,
      orderClass: bracket ? 'bracket' : 'simple',
      role: undefined,
      limitPrice: request.limit_price ?? null,
      stopPrice: request.stop_price ?? null,
      trailPrice: request.trail_price ?? null,
      trailPercent: request.trail_percent ?? null,
      hwm: null,
      status,
      armedAt: now,
      legs,
      parent: undefined,
    };
    if (bracket) {
      const exit: Side = request.side === 'buy' ? 'sell' : 'buy';
      const leg = (role: 'take_profit' | 'stop_loss'): Order => ({
        ...base,
        id: randomUUID(),
        clientOrderId: randomUUID(),
        side: exit,
        type:
          role === 'take_profit'
            ? 'limit'
            : request.stop_loss?.limit_price === undefined
              ? 'stop'
              : 'stop_limit',
        orderClass: 'bracket',
        role,
        limitPrice:
          role === 'take_profit'
            ? (request.take_profit?.limit_price as number)
            : (request.stop_loss?.limit_price ?? null),
        stopPrice: role === 'stop_loss' ? (request.stop_loss?.stop_price as number) : null,
        trailPrice: null,
        trailPercent: null,
        hwm: null,
        status: 'held',
        armedAt: Number.POSITIVE_INFINITY,
        legs: [],
        parent: order,
      });
      legs.push(leg('take_profit'), leg('stop_loss'));
    }
    if (order.type === 'trailing_stop') {
      const last = this.lastPrice(symbol);
      if (last !== undefined) this.ratchet(order, last);
    }
    this.orders.push(order);
    this.open.push(order);
    this.byId.set(order.id, order);
    this.byClientId.set(clientOrderId, order);
    for (const leg of legs) this.byId.set(leg.id, leg);

    const bar = this.inSessionBar(symbol);
    if (bar !== undefined && order.tif !== 'opg' && order.tif !== 'cls') {
      // Submitted in session: the last price is the open.
      this.atPrice(order, bar.open, now);
      this.legsAtPrice(order, bar.open, now);
    }
    this.prune();
    return this.wireOrder(order, true);
  }

  private validate(request: OrderRequest): void {
    if (request.notional !== undefined) {
      throw reject(422, 40010001, 'notional orders are not supported by the local broker');
    }
    if (request.extended_hours === true) {
      throw reject(422, 40010001, 'extended hours orders are not supported by the local broker');
    }
    const qty = request.qty;
    if (qty === undefined) throw reject(422, 40010001, 'qty is required');
    if (!(qty > 0)) throw reject(422, 40010001, `qty must be > 0, got ${qty}`);
    if (!Number.isInteger(qty) && !(request.type === 'market' && request.time_in_force === 'day')) {
      throw reject(422, 40010001, 'fractional orders must be market day orders');
    }
    const { type, time_in_force: tif } = request;
    const needsLimit = type === 'limit' || type === 'stop_limit';
    const needsStop = type === 'stop' || type === 'stop_limit';
    if (needsLimit && request.limit_price === undefined)
      throw reject(422, 40010001, 'limit_price is required');
    if (!needsLimit && request.limit_price !== undefined) {
      throw reject(422, 40010001, `limit_price is not allowed for a ${type} order`);
    }
    if (needsStop && request.stop_price === undefined) throw reject(422, 40010001, 'stop_price is required');
    if (!needsStop && request.stop_price !== undefined) {
      throw reject(422, 40010001, `stop_price is not allowed for a ${type} order`);
    }
    if (type === 'trailing_stop') {
      if ((request.trail_price === undefined) === (request.trail_percent === undefined)) {
        throw reject(422, 40010001, 'exactly one of trail_price and trail_percent is required');
      }
      if (
        request.trail_percent !== undefined &&
        !(request.trail_percent > 0 && request.trail_percent < 100)
      ) {
        throw reject(422, 40010001, 'trail_percent must be in (0, 100)');
      }
      if (tif !== 'day' && tif !== 'gtc')
        throw reject(422, 40010001, 'trailing stop orders must be day or gtc');
    } else if (request.trail_price !== undefined || request.trail_percent !== undefined) {
      throw reject(422, 40010001, `trail_price / trail_percent are not allowed for a ${type} order`);
    }
    if (request.limit_price !== undefined) checkTick('limit_price', request.limit_price);
    if (request.stop_price !== undefined) checkTick('stop_price', request.stop_price);
    if (request.trail_price !== undefined) checkTick('trail_price', request.trail_price);

    const orderClass = request.order_class ?? 'simple';
    if (orderClass !== 'simple' && orderClass !== '' && orderClass !== 'bracket') {
      throw reject(422, 40010001, `order_class ${orderClass} is not supported by the local broker`);
    }
    if (orderClass === 'bracket') {
      const target = request.take_profit?.limit_price;
      const stop = request.stop_loss?.stop_price;
      if (target === undefined) throw reject(422, 40010001, 'bracket orders require take_profit.limit_price');
      if (stop === undefined) throw reject(422, 40010001, 'bracket orders require stop_loss.stop_price');
      checkTick('take_profit.limit_price', target);
      checkTick('stop_loss.stop_price', stop);
      const stopLimit = request.stop_loss?.limit_price;
      if (stopLimit !== undefined) checkTick('stop_loss.limit_price', stopLimit);
      if (type !== 'market' && type !== 'limit') {
        throw reject(422, 40010001, 'bracket orders must have a market or limit entry');
      }
      if (tif !== 'day' && tif !== 'gtc') throw reject(422, 40010001, 'bracket orders must be day or gtc');
      const long = request.side === 'buy';
      if (long ? target <= stop : target >= stop) {
        throw reject(422, 40010001, 'take_profit.limit_price must be beyond stop_loss.stop_price');
      }
      const base = request.limit_price ?? this.lastPrice(request.symbol.toUpperCase());
      if (base !== undefined) {
        if (long ? target < base + 0.01 : target > base - 0.01) {
          throw reject(422, 42210000, 'take_profit.limit_price must be >= base_price + 0.01');
        }
        if (long ? stop > base - 0.01 : stop < base + 0.01) {
          throw reject(422, 42210000, 'stop_loss.stop_price must be <= base_price - 0.01');
        }
      }
    } else if (request.take_profit !== undefined || request.stop_loss !== undefined) {
      throw reject(422, 40010001, 'take_profit / stop_loss need order_class bracket');
    }

    if ((tif === 'opg' || tif === 'cls') && type !== 'market' && type !== 'limit') {
      throw reject(422, 40010001, `${tif} orders must be market or limit orders`);
    }
    const clock = newYorkTime(this.clock);
    const session = sessionOn(clock.date);
    if (tif === 'opg' && session !== undefined) {
      if (clock.minutes >= OPG_CUTOFF_MINUTES && clock.minutes < EVENING_MINUTES) {
        throw reject(
          422,
          42210000,
          'opg orders are accepted only before 09:28 and after 19:00 New York on a trading day',
        );
      }
    }
    if (tif === 'cls' && session !== undefined) {
      if (this.clock >= session.closeAt - CLS_CUTOFF_BEFORE_CLOSE_MS && clock.minutes < EVENING_MINUTES) {
        throw reject(422, 42210000, 'cls orders are accepted only until 10 minutes before the close');
      }
    }
  }

  private find(id: string): Order {
    const order = this.byId.get(id);
    if (order === undefined) throw reject(404, 40410000, 'order not found');
    return order;
  }

  getOrder(id: string): Record<string, unknown> {
    return this.wireOrder(this.find(id), true);
  }

  getOrderByClientOrderId(clientOrderId: string): Record<string, unknown> {
    const order = this.byClientId.get(clientOrderId);
    if (order === undefined) throw reject(404, 40410000, `order not found for ${clientOrderId}`);
    return this.wireOrder(order, true);
  }

  /** `DELETE /v2/orders/:id`: cancels a working order (a bracket's legs with it, or a leg's sibling). */
  cancelOrder(id: string): void {
    const order = this.find(id);
    if (!WORKING.has(order.status)) {
      throw reject(422, 42210000, `order is already in "${order.status}" state`);
    }
    const at = this.clock;
    this.finish(order, 'canceled', at);
    if (order.parent !== undefined) {
      for (const sibling of order.parent.legs) {
        if (WORKING.has(sibling.status)) this.finish(sibling, 'canceled', at);
      }
    }
    this.prune();
  }

  /** `GET /v2/orders`. */
  listOrders(query: URLSearchParams): Record<string, unknown>[] {
    const status = query.get('status') ?? 'open';
    if (status !== 'open' && status !== 'closed' && status !== 'all') {
      throw reject(422, 40010001, `invalid status "${status}"`);
    }
    const limitText = query.get('limit');
    const limit = limitText === null ? ORDER_LIST_DEFAULT : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > ORDER_LIST_MAX) {
      throw reject(422, 40010001, `invalid limit "${limitText}" (1..${ORDER_LIST_MAX})`);
    }
    const after = parseTimeParam(query, 'after');
    const until = parseTimeParam(query, 'until');
    const direction = query.get('direction') ?? 'desc';
    if (direction !== 'asc' && direction !== 'desc')
      throw reject(422, 40010001, `invalid direction "${direction}"`);
    const nested = query.get('nested') === 'true';
    const symbolsText = query.get('symbols');
    const symbols =
      symbolsText === null || symbolsText === ''
        ? undefined
        : new Set(symbolsText.split(',').map((s) => s.trim().toUpperCase()));
    const side = query.get('side');

    // Nested, a bracket counts as open while anything in it works (a filled entry with live legs):
    // its working stop must not vanish from an open-order listing.
    // Open orders are looked for among the top-level orders with something working (`open`, a
    // subsequence of `orders` in the same order), not the whole day's history: an exit lists its
    // symbol's open orders, and scanning every order ever placed made each list cost the broker
    // thread more as the session went on (a CPU cost Alpaca's own service does not put on the bot).
    const tops = status === 'open' ? this.open : this.orders;
    const matches: Order[] = [];
    const consider = (o: Order) => {
      const isOpen = WORKING.has(o.status) || (nested && o.legs.some((l) => WORKING.has(l.status)));
      if (status === 'open' && !isOpen) return;
      if (status === 'closed' && isOpen) return;
      if (after !== undefined && !(o.createdAt > after)) return;
      if (until !== undefined && !(o.createdAt < until)) return;
      if (symbols !== undefined && !symbols.has(o.symbol)) return;
      if (side !== null && o.side !== side) return;
      matches.push(o);
    };
    for (const top of tops) {
      consider(top);
      if (!nested) for (const leg of top.legs) consider(leg);
    }
    const ordered = direction === 'asc' ? matches : [...matches].reverse();
    return ordered.slice(0, limit).map((o) => this.wireOrder(o, nested));
  }

  private wireOrder(order: Order, nested: boolean): Record<string, unknown> {
    const price = (p: number | null): string | null => (p === null ? null : decimal(p));
    return {
      id: order.id,
      client_order_id: order.clientOrderId,
      created_at: iso(order.createdAt),
      updated_at: iso(order.updatedAt),
      submitted_at: iso(order.createdAt),
      filled_at: optionalIso(order.filledAt),
      expired_at: optionalIso(order.expiredAt),
      canceled_at: optionalIso(order.canceledAt),
      failed_at: null,
      replaced_at: null,
      replaced_by: null,
      replaces: null,
      asset_id: assetId(order.symbol),
      symbol: order.symbol,
      asset_class: 'us_equity',
      notional: null,
      qty: decimal(order.qty),
      filled_qty: decimal(order.filledQty),
      filled_avg_price: order.filledQty > 0 ? decimal(order.filledAvgPrice) : null,
      order_class: order.orderClass,
      order_type: order.type,
      type: order.type,
      side: order.side,
      time_in_force: order.tif,
      limit_price: price(order.limitPrice),
      stop_price: price(order.stopPrice),
      status: order.status,
      extended_hours: false,
      legs: nested && order.legs.length > 0 ? order.legs.map((l) => this.wireOrder(l, false)) : null,
      trail_percent: order.trailPercent === null ? null : decimal(order.trailPercent),
      trail_price: price(order.trailPrice),
      hwm: price(order.hwm),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Activities, clock, calendar

  /** `GET /v2/account/activities`: FILL, DIV and SPLIT, paged by activity id. */
  activities(query: URLSearchParams): Record<string, unknown>[] {
    const typesText = query.get('activity_types');
    const types =
      typesText === null || typesText === '' ? undefined : new Set(typesText.split(',').map((t) => t.trim()));
    const after = parseTimeParam(query, 'after');
    const until = parseTimeParam(query, 'until');
    const date = query.get('date');
    if (date !== null && Number.isNaN(parseDate(date))) throw reject(422, 40010001, `invalid date "${date}"`);
    const direction = query.get('direction') ?? 'desc';
    if (direction !== 'asc' && direction !== 'desc')
      throw reject(422, 40010001, `invalid direction "${direction}"`);
    const sizeText = query.get('page_size');
    const size = sizeText === null ? ACTIVITY_PAGE_DEFAULT : Number(sizeText);
    if (!Number.isInteger(size) || size < 1 || size > ACTIVITY_PAGE_MAX) {
      throw reject(422, 40010001, `invalid page_size "${sizeText}" (1..${ACTIVITY_PAGE_MAX})`);
    }
    const typeOf = (a: Activity): string =>
      a.kind === 'fill' ? 'FILL' : a.kind === 'split' ? 'SPLIT' : 'DIV';
    const selected = this.activityLog.filter((a) => {
      if ((a.kind === 'fill' || a.kind === 'split') && a.reportedAt > this.clock) return false;
      if (types !== undefined && !types.has(typeOf(a))) return false;
      if (after !== undefined && !(a.time > after)) return false;
      if (until !== undefined && !(a.time < until)) return false;
      if (date !== null && newYorkTime(a.time).date !== date) return false;
      return true;
    });
    const ordered = direction === 'asc' ? selected : [...selected].reverse();
    const token = query.get('page_token');
    let start = 0;
    if (token !== null && token !== '') {
      const index = ordered.findIndex((a) => a.id === token);
      if (index < 0) throw reject(422, 40010001, 'invalid page_token');
      start = index + 1;
    }
    return ordered.slice(start, start + size).map((a) => this.wireActivity(a));
  }

  private wireActivity(activity: Activity): Record<string, unknown> {
    switch (activity.kind) {
      case 'fill':
        return {
          id: activity.id,
          activity_type: 'FILL',
          transaction_time: iso(activity.time),
          type: activity.leavesQty > EPSILON ? 'partial_fill' : 'fill',
          price: decimal(activity.price),
          qty: decimal(activity.qty),
          side: activity.order.side,
          symbol: activity.order.symbol,
          leaves_qty: decimal(activity.leavesQty),
          order_id: activity.order.id,
          cum_qty: decimal(activity.cumQty),
          order_status: activity.status,
        };
      case 'split':
        return {
          id: activity.id,
          activity_type: 'SPLIT',
          date: activity.date,
          net_amount: '0',
          description: activity.description,
          symbol: activity.symbol,
          qty: decimal(activity.qty),
          price: decimal(activity.price),
          status: 'executed',
        };
      case 'dividend':
        return {
          id: activity.id,
          activity_type: 'DIV',
          date: activity.date,
          net_amount: dollars(activity.netCents),
          description: `Cash DIV @ ${decimal(activity.amount)}, Pos QTY: ${decimal(activity.qty)}`,
          symbol: activity.symbol,
          qty: decimal(activity.qty),
          per_share_amount: decimal(activity.amount),
          status: 'executed',
        };
    }
  }

  /** `GET /v2/clock`. */
  clockReading(): Record<string, unknown> {
    const today = sessionOn(newYorkTime(this.clock).date);
    const isOpen = today !== undefined && this.clock >= today.openAt && this.clock < today.closeAt;
    return {
      timestamp: formatNewYork(this.clock),
      is_open: isOpen,
      next_open: formatNewYork(nextSessionOpeningAfter(this.clock).openAt),
      next_close: formatNewYork(nextSessionClosingAfter(this.clock).closeAt),
    };
  }

  /** `GET /v2/calendar`: `start`/`end` as `YYYY-MM-DD` or RFC 3339 (its date part is read). */
  calendar(query: URLSearchParams): Record<string, unknown>[] {
    const day = (name: string, fallback: string): string => {
      const text = query.get(name);
      if (text === null || text === '') return fallback;
      const date = text.slice(0, 10);
      if (Number.isNaN(parseDate(date))) throw reject(422, 40010001, `invalid ${name} "${text}"`);
      return date;
    };
    const start = day('start', `${CALENDAR_FIRST_YEAR}-01-01`);
    const end = day('end', `${CALENDAR_LAST_YEAR}-12-31`);
    for (const date of [start, end]) {
      const year = Number(date.slice(0, 4));
      if (year < CALENDAR_FIRST_YEAR || year > CALENDAR_LAST_YEAR) {
        throw reject(
          422,
          40010001,
          `the local calendar covers ${CALENDAR_FIRST_YEAR}..${CALENDAR_LAST_YEAR}, not ${date}`,
        );
      }
    }
    if (start > end) return [];
    return tradingDays(start, end).map((d) => ({
      date: d.date,
      open: d.open,
      close: d.close,
      session_open: '0400',
      session_close: '2000',
      settlement_date: settlementDate(d.date),
    }));
  }
}

function formatIsoDate(day: number): string {
  return new Date(day).toISOString().slice(0, 10);
}

/** A query time: RFC 3339, or `YYYY-MM-DD` read as 00:00 UTC. Undefined when absent; 422 when invalid. */
function parseTimeParam(query: URLSearchParams, name: string): number | undefined {
  const text = query.get(name);
  if (text === null || text === '') return undefined;
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(text)) {
    throw reject(422, 40010001, `invalid ${name} "${text}"`);
  }
  const value = Date.parse(text);
  if (Number.isNaN(value)) throw reject(422, 40010001, `invalid ${name} "${text}"`);
  return value;
}
