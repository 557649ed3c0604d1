/**
 * The thin Advanced Trade REST client both Coinbase adapters use: fetch, a JWT per request
 * (`auth.ts`), a per-attempt timeout, and retries with backoff on 429 (Retry-After honoured, capped)
 * and 5xx and network failures **for idempotent calls only** (every GET, a cancel). An order
 * submission is sent once: its failure is reported as an unknown outcome and the broker resolves
 * it by client order id. Each failure becomes the caller's error class (broker or market data).
 * Why not the `coinbase-api` package: see docs/crypto.md.
 */
import * as z from 'zod';
import { retryAfterMs } from '../../notify/webhook.js';
import {
  type AlpacaRetryEvent,
  type AlpacaRetryOptions,
  DEFAULT_BASE_DELAY_MS,
  DEFAULT_MAX_DELAY_MS,
  DEFAULT_MAX_RETRIES,
} from '../alpaca/options.js';
import { type CdpKey, loadSigningKey, requestJwt, type SigningKey } from './auth.js';

/** The one Retry-After parser (seconds or an HTTP date), shared with the Slack webhook. */
export { retryAfterMs };

/** Coinbase's production origin. */
export const COINBASE_API_ORIGIN = 'https://api.coinbase.com';
export const BROKERAGE = '/api/v3/brokerage';

/** What `onRetry` reports before each retry (never a key). */
export type CoinbaseRetryEvent = AlpacaRetryEvent & { readonly operation: string };
export type CoinbaseRetryOptions = AlpacaRetryOptions;

export interface CoinbaseClientOptions {
  readonly key: CdpKey;
  /** Origin of the API, e.g. a local server's `http://127.0.0.1:1234`; default Coinbase's. */
  readonly baseUrl?: string;
  readonly retry?: CoinbaseRetryOptions;
  /** Per-attempt timeout in ms (default 30000). */
  readonly timeoutMs?: number;
  readonly onRetry?: (event: CoinbaseRetryEvent) => void;
  /** The signing clock (epoch ms); default the machine's. */
  readonly now?: () => number;
}

/** How a failure is reported: the caller's error classes. */
export interface FailureFactory {
  /** 429, 5xx, timeout, dropped connection after the retries allowed: outcome unknown. */
  unavailable(message: string, status: number | undefined, cause: unknown): Error;
  /** A final 4xx. */
  rejected(message: string, status: number, cause: unknown): Error;
  /** An answer that breaks its schema or is not JSON. */
  malformed(message: string, cause: unknown): Error;
}

export interface CallOptions {
  readonly query?: Readonly<Record<string, string | number | readonly string[] | undefined>>;
  readonly body?: unknown;
  /** Retried on 429/5xx/network failures when true. */
  readonly idempotent: boolean;
  /** Appended to the message of an unknown outcome (an order submission). */
  readonly unknownOutcomeNote?: string;
}

class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(`HTTP ${status}`);
  }
}

export class CoinbaseClient {
  private readonly key: SigningKey;
  private readonly origin: URL;
  private readonly maxRetries: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  readonly timeoutMs: number;
  private readonly onRetry: ((event: CoinbaseRetryEvent) => void) | undefined;
  private readonly now: () => number;

  constructor(
    options: CoinbaseClientOptions,
    private readonly label: string,
    private readonly failures: FailureFactory,
  ) {
    this.key = loadSigningKey(options.key);
    this.origin = new URL(options.baseUrl ?? COINBASE_API_ORIGIN);
    this.maxRetries = options.retry?.maxRetries ?? DEFAULT_MAX_RETRIES;
    this.baseDelayMs = options.retry?.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
    this.maxDelayMs = options.retry?.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.onRetry = options.onRetry;
    this.now = options.now ?? Date.now;
  }

  /** One call's answer, validated with `schema`. `what` names the call in every message. */
  async call<S extends z.ZodType>(
    what: string,
    method: 'GET' | 'POST',
    path: string,
    schema: S,
    options: CallOptions,
  ): Promise<z.output<S>> {
    const text = await this.send(what, method, path, options);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw this.failures.malformed(`${this.label}: ${what}: the answer is not JSON`, error);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0] as z.core.$ZodIssue;
      throw this.failures.malformed(
        `${this.label}: ${what}: bad answer at ${issue.path.join('.') || '(root)'}: ${issue.message}`,
        parsed.error,
      );
    }
    return parsed.data;
  }

  private async send(
    what: string,
    method: 'GET' | 'POST',
    path: string,
    options: CallOptions,
  ): Promise<string> {
    const url = new URL(`${BROKERAGE}${path}`, this.origin);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value === undefined) continue;
      if (typeof value === 'object') for (const v of value) url.searchParams.append(name, v);
      else url.searchParams.set(name, String(value));
    }
    for (let attempt = 0; ; attempt++) {
      try {
        const jwt = await requestJwt(this.key, method, url.host, url.pathname, this.now());
        const response = await fetch(url, {
          method,
          headers: {
            Authorization: `Bearer ${jwt}`,
            Accept: 'application/json',
            ...(options.body === undefined ? {} : { 'Content-Type': 'application/json' }),
          },
          ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        const text = await response.text();
        if (response.ok) return text;
        throw new HttpStatusError(
          response.status,
          text,
          retryAfterMs(response.headers.get('retry-after'), this.now()),
        );
      } catch (error) {
        const status = error instanceof HttpStatusError ? error.status : undefined;
        const retryable =
          options.idempotent && (status === undefined || status === 429 || status === 408 || status >= 500);
        if (!retryable || attempt >= this.maxRetries) {
          throw this.failure(what, error, options.idempotent ? attempt : 0, options.unknownOutcomeNote);
        }
        const delayMs = this.retryDelay(error, attempt);
        this.onRetry?.({
          operation: what,
          attempt: attempt + 1,
          maxRetries: this.maxRetries,
          delayMs: Math.round(delayMs),
          ...(status === undefined ? {} : { status }),
        });
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }

  private retryDelay(error: unknown, attempt: number): number {
    const retryAfter = error instanceof HttpStatusError ? error.retryAfterMs : undefined;
    if (retryAfter !== undefined) return Math.min(retryAfter, this.maxDelayMs);
    const backoff = Math.min(this.baseDelayMs * 2 ** attempt, this.maxDelayMs);
    return Math.min(backoff * (0.8 + Math.random() * 0.4), this.maxDelayMs);
  }

  private failure(what: string, error: unknown, retries: number, note: string | undefined): Error {
    const prefix = `${this.label}: ${what}`;
    const after = retries === 0 ? '' : ` after ${retries} ${retries === 1 ? 'retry' : 'retries'}`;
    const unknown = note === undefined ? '' : `; ${note}`;
    if (error instanceof HttpStatusError) {
      const detail = errorDetail(error.body);
      if (error.status === 429 || error.status === 408 || error.status >= 500) {
        const kind = error.status === 429 ? ' (rate limited)' : '';
        return this.failures.unavailable(
          `${prefix}: HTTP ${error.status}${kind}${after}: ${detail}${unknown}`,
          error.status,
          error,
        );
      }
      return this.failures.rejected(`${prefix}: HTTP ${error.status}: ${detail}`, error.status, error);
    }
    const name = (error as { name?: string } | undefined)?.name;
    const reason =
      name === 'TimeoutError'
        ? `no answer within ${this.timeoutMs} ms`
        : `the connection failed (${describe(error)})`;
    return this.failures.unavailable(`${prefix}: ${reason}${after}${unknown}`, undefined, error);
  }
}

const errorBodySchema = z.object({
  error: z.string().optional(),
  message: z.string().optional(),
  error_details: z.string().optional(),
});

function errorDetail(body: string): string {
  try {
    const parsed = errorBodySchema.safeParse(JSON.parse(body));
    if (parsed.success) {
      const { error, message, error_details } = parsed.data;
      const text = [error, message, error_details].filter((s) => s !== undefined && s !== '').join(': ');
      if (text !== '') return text;
    }
  } catch {
    // not JSON: the raw text, shortened
  }
  return body.length > 200 ? `${body.slice(0, 200)}…` : body || '(empty body)';
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  return cause?.code ?? cause?.message ?? (error as Error | undefined)?.message ?? String(error);
}
