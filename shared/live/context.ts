import type { StrategyConfig } from '../core/config/schema.js';
import { QuantShiftError } from '../core/errors.js';
import type { Broker } from '../core/ports/broker.js';
import type { Cache } from '../core/ports/cache.js';
import type { MarketData } from '../core/ports/market-data.js';
import type { Notifier } from '../core/ports/notifier.js';
import type { StateStore } from '../core/ports/state-store.js';

/** Structured logging, as the handlers' Powertools Logger provides it (secrets are redacted there). */
export interface LiveLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Everything a live step needs: the config and the adapters, built once per cold start. */
export interface LiveContext {
  readonly stage: 'paper' | 'live';
  /** Broker requests a minute (Alpaca allows 200); the local stack, whose clock is simulated, lifts it. */
  readonly brokerRateLimit?: number;
  readonly config: StrategyConfig;
  readonly configHash: string;
  readonly gitCommit: string;
  readonly broker: Broker;
  readonly marketData: MarketData;
  readonly store: StateStore;
  /** An accelerator only: every step works without it. */
  readonly cache?: Cache;
  readonly notifier: Notifier;
  readonly log: LiveLogger;
}

/** No session record for the day: the market-open check did not run, so nothing trades. */
export class NoSessionError extends QuantShiftError {}

/** Bars that do not end at the previous session's close, or an intent for another day. */
export class StaleDataError extends QuantShiftError {}

/** The broker and the durable record disagree in a way the step cannot settle alone. */
export class UnknownStateError extends QuantShiftError {}
