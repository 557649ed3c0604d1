/**
 * The crypto bot's own records, beside the {@link StateStore} port (the same table adapter
 * implements both): funding-rate readings of the perpetual-style futures (there is no history
 * endpoint at Coinbase, so the bot keeps its own) and the dry run's decisions (the paper stage:
 * every intent with the best bid/ask at the decision, no order sent).
 */
import type { DryRunAccount } from '../live/dry-run-account.js';
import type { FundingReading } from '../market/funding.js';
import type { IntentRecord } from './state-store.js';

/** One funding reading as recorded: the reading and when the monitor read it. */
export interface FundingRecord extends FundingReading {
  /** ISO time of the monitor's run that read it. */
  readonly recordedAt: string;
}

/** One dry-run decision: what execute-orders would have sent, and the book at that moment. */
export interface DryRunRecord {
  readonly date: string;
  readonly clientOrderId: string;
  readonly symbol: string;
  readonly purpose: IntentRecord['purpose'];
  readonly side: IntentRecord['side'];
  readonly qty: number;
  readonly type: IntentRecord['type'];
  readonly stopPrice?: number;
  readonly limitPrice?: number;
  /** The decision close the intent was sized at. */
  readonly referencePrice: number;
  /** The best bid and ask when execute-orders ran. */
  readonly bid: number;
  readonly ask: number;
  /** ISO time of the book. */
  readonly quoteTime: string;
  /** The price a market order would have paid: the ask for a buy, the bid for a sell. */
  readonly wouldPay: number;
  /**
   * The virtual fill (the dry run's account booked it at `wouldPay`, at the product's base
   * increment, with the taker fee): absent when the order rests (a stop) or was refused.
   */
  readonly fill?: { readonly qty: number; readonly price: number; readonly feeCents: number };
  /** (ask - bid) / mid in bps. */
  readonly spreadBps: number;
  /** ISO time of the decision (the scheduled run). */
  readonly decidedAt: string;
}

/** Funding rates of the perpetual-style futures of some underlyings (`BTC`, `ETH`). */
export interface FundingSource {
  getFundingRates(underlyings: readonly string[]): Promise<FundingReading[]>;
}

export interface CryptoStore {
  /** Records a reading under its product and funding time (the same reading again rewrites the same item). */
  putFundingReading(record: FundingRecord): Promise<void>;
  /** The most recent reading of a product (by funding time), or undefined before the first. */
  getLatestFundingReading(productId: string): Promise<FundingRecord | undefined>;
  /** A product's readings with `from <= time <= to` (ISO times), oldest first. */
  listFundingReadings(productId: string, from: string, to: string): Promise<FundingRecord[]>;
  /** Records a dry-run decision once (a retried run finds it and gets `false`). */
  putDryRun(record: DryRunRecord): Promise<boolean>;
  /** A day's dry-run decisions, by client order id. */
  listDryRuns(date: string): Promise<DryRunRecord[]>;
  /** The dry run's virtual account and its version, or undefined before its first read. */
  getDryRunAccount(): Promise<{ readonly account: DryRunAccount; readonly version: number } | undefined>;
  /** Stores the virtual account if its stored version is `expectedVersion` (0: none yet). */
  putDryRunAccount(
    account: DryRunAccount,
    expectedVersion: number,
  ): Promise<{ readonly version: number } | { readonly conflict: true }>;
}
