/**
 * The broker, as the live functions see it. Alpaca implements it (paper or live keys); so does the
 * local paper broker, through the same adapter over HTTP. All prices are raw (unadjusted) dollars;
 * quantities are shares. Times are ISO 8601 strings as the broker reports them.
 */
export type BrokerOrderSide = 'buy' | 'sell';
export type BrokerOrderType = 'market' | 'limit' | 'stop' | 'stop_limit' | 'trailing_stop';
/** `opg`: market-on-open (accepted only before 09:28 New York); `cls`: market-on-close. */
export type TimeInForce = 'day' | 'gtc' | 'opg' | 'cls' | 'ioc' | 'fok';
export type BrokerOrderStatus =
  | 'new'
  | 'accepted'
  | 'pending_new'
  | 'partially_filled'
  | 'filled'
  | 'done_for_day'
  | 'canceled'
  | 'expired'
  | 'replaced'
  | 'pending_cancel'
  | 'pending_replace'
  | 'rejected'
  | 'suspended'
  | 'stopped'
  | 'calculated'
  | 'held';

/** An order to submit. `clientOrderId` is deterministic per intent (see docs/live.md). */
export interface OrderRequest {
  readonly clientOrderId: string;
  readonly symbol: string;
  readonly side: BrokerOrderSide;
  readonly qty: number;
  readonly type: BrokerOrderType;
  readonly timeInForce: TimeInForce;
  readonly limitPrice?: number;
  readonly stopPrice?: number;
  readonly trailPrice?: number;
  readonly trailPercent?: number;
  /** Bracket: a take-profit limit and a stop-loss attached to a day/gtc entry. */
  readonly bracket?: { readonly takeProfitLimit: number; readonly stopLoss: number };
}

/** An order as the broker reports it. */
export interface BrokerOrder {
  readonly id: string;
  readonly clientOrderId: string;
  readonly symbol: string;
  readonly side: BrokerOrderSide;
  readonly type: BrokerOrderType;
  readonly timeInForce: TimeInForce;
  readonly qty: number;
  readonly filledQty: number;
  /** Average fill price, null until something filled. */
  readonly filledAvgPrice: number | null;
  readonly limitPrice: number | null;
  readonly stopPrice: number | null;
  readonly status: BrokerOrderStatus;
  readonly submittedAt: string;
  readonly filledAt: string | null;
  /** Child orders of a bracket (take-profit, stop-loss). */
  readonly legs: readonly BrokerOrder[];
}

export interface BrokerAccount {
  readonly equity: number;
  /** Equity at the previous session's close: the day's starting equity for the daily-loss breaker. */
  readonly lastEquity: number;
  readonly cash: number;
  readonly buyingPower: number;
  readonly tradingBlocked: boolean;
  readonly status: string;
}

export interface BrokerPosition {
  readonly symbol: string;
  /** Signed: negative for a short. */
  readonly qty: number;
  readonly avgEntryPrice: number;
  readonly marketValue: number;
  readonly currentPrice: number;
  /** `us_equity` or `crypto`: the equity functions never trade other classes. */
  readonly assetClass: string;
}

/** A fill or an account activity (split, dividend) from the broker's activity feed. */
export type BrokerActivity =
  | {
      readonly kind: 'fill';
      /** Unique execution id: the fill ledger's key. */
      readonly id: string;
      readonly orderId: string;
      readonly symbol: string;
      readonly side: BrokerOrderSide;
      readonly qty: number;
      readonly price: number;
      readonly time: string;
      /** Whether the order is now completely filled. */
      readonly partial: boolean;
      /** A virtual fill of the crypto dry run (never an exchange's). */
      readonly dryRun?: true;
    }
  | {
      readonly kind: 'split' | 'dividend';
      readonly id: string;
      readonly symbol: string;
      /** Split: new shares per old share (2 for a 2-for-1). Dividend: dollars per share. */
      readonly ratio: number;
      readonly date: string;
    };

/** Trading sessions: NYSE holidays and early closes. */
export interface MarketClock {
  readonly timestamp: string;
  readonly isOpen: boolean;
  readonly nextOpen: string;
  readonly nextClose: string;
}

export interface TradingDay {
  /** `YYYY-MM-DD`. */
  readonly date: string;
  /** `HH:MM` in the calendar's zone: New York for NYSE; `00:00` UTC for crypto (see MarketCalendar). */
  readonly open: string;
  /** `HH:MM` New York time, 13:00 on an early-close day; `24:00` UTC for crypto. */
  readonly close: string;
}

/**
 * The broker port. Errors: `BrokerRejectedError` (a 4xx that is final, with the broker's
 * message), `DuplicateClientOrderIdError` (422 for a client order id already used),
 * `BrokerUnavailableError` (5xx, timeouts, dropped connections after the adapter's retries:
 * the outcome of a submission is UNKNOWN and must be resolved with `getOrderByClientOrderId`).
 */
export interface Broker {
  getAccount(): Promise<BrokerAccount>;
  getPositions(): Promise<BrokerPosition[]>;
  submitOrder(order: OrderRequest): Promise<BrokerOrder>;
  /** Null when the broker has no order with that client order id. */
  getOrderByClientOrderId(clientOrderId: string): Promise<BrokerOrder | null>;
  listOrders(filter: {
    readonly status: 'open' | 'closed' | 'all';
    readonly after?: string;
    readonly symbols?: readonly string[];
  }): Promise<BrokerOrder[]>;
  cancelOrder(orderId: string): Promise<void>;
  /** Fills and corporate actions after `after` (ISO time), oldest first. */
  getActivities(filter: { readonly after?: string; readonly until?: string }): Promise<BrokerActivity[]>;
  getClock(): Promise<MarketClock>;
  getCalendar(range: { readonly from: string; readonly to: string }): Promise<TradingDay[]>;
}
