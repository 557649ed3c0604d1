/**
 * What the Alpaca adapters (trading and market data) share: how they retry, what they report
 * before a retry, and the connection options every client takes.
 */

/** What `onRetry` reports before each retry (never a key). */
export interface AlpacaRetryEvent {
  /** The call, e.g. `get account` (the broker names it; market data has one call). */
  readonly operation?: string;
  /** 1-based number of the retry about to run. */
  readonly attempt: number;
  readonly maxRetries: number;
  /** The wait before it: the server's Retry-After when it sent one (capped), else the backoff. */
  readonly delayMs: number;
  /** The HTTP status that caused the retry; absent for a network failure. */
  readonly status?: number;
}

/** How an Alpaca client retries 429 and 5xx answers and network failures (idempotent calls only). */
export interface AlpacaRetryOptions {
  /** Retries after the first attempt (default 4). */
  readonly maxRetries?: number;
  /** First backoff in ms, doubled per retry with ±20% jitter (default 500). */
  readonly baseDelayMs?: number;
  /** Cap on any single wait, a Retry-After included (default 30000). */
  readonly maxDelayMs?: number;
}

/** The options every Alpaca client takes. The keys are never read from the environment here. */
export interface AlpacaClientOptions<E extends AlpacaRetryEvent = AlpacaRetryEvent> {
  readonly keyId: string;
  readonly secret: string;
  /** Origin of the API, e.g. a local server's `http://127.0.0.1:1234`; default: Alpaca's. */
  readonly baseUrl?: string;
  readonly retry?: AlpacaRetryOptions;
  /** Per-attempt timeout in ms (default 30000). */
  readonly timeoutMs?: number;
  /** Client-side rate limit (default 200 requests a minute, Alpaca's limit); `false` turns it off. */
  readonly rateLimit?: { readonly maxRequests: number; readonly intervalMs: number } | false;
  /** Told before each retry, e.g. to log it. */
  readonly onRetry?: (event: E) => void;
}

export const DEFAULT_MAX_RETRIES = 4;
export const DEFAULT_BASE_DELAY_MS = 500;
export const DEFAULT_MAX_DELAY_MS = 30_000;
/** Shorter strings are not blanked out of messages (they would mangle ordinary words). */
export const MIN_REDACTED_LENGTH = 4;
