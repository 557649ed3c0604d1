/**
 * Posting to a Slack incoming webhook with `fetch`: a timeout per attempt, retries with backoff on
 * 429 (Retry-After honoured), 5xx, network failures and timeouts, and a named error at the end.
 * The URL is the credential: it never appears in an error, an event or a log line from here.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SlackWebhookRejectedError, SlackWebhookUnavailableError } from './errors.js';
import type { SlackPayload } from './slack.js';

/** Retry policy of {@link postSlackWebhook}. */
export interface WebhookRetryOptions {
  /** Attempts in all, the first included (default 4). */
  readonly maxAttempts?: number;
  /** First backoff in ms, doubled per retry with ±20% jitter (default 500). */
  readonly baseDelayMs?: number;
  /**
   * Cap on any single wait (default 10000). A Retry-After longer than this ends the retries at once
   * with {@link SlackWebhookUnavailableError}: Lambda's own retry comes later.
   */
  readonly maxDelayMs?: number;
}

/** What {@link WebhookPostOptions.onRetry} reports before each retry (never the URL). */
export interface WebhookRetryEvent {
  /** 1-based number of the attempt that failed. */
  readonly attempt: number;
  /** The wait before the next one: Retry-After when Slack sent it, else the backoff. */
  readonly delayMs: number;
  /** The HTTP status, absent for a network failure or a timeout. */
  readonly status?: number;
  readonly reason: string;
}

/** Options of {@link postSlackWebhook}. */
export interface WebhookPostOptions {
  /** The `fetch` to use (default: the global one). */
  readonly fetch?: typeof fetch;
  /** Timeout of one attempt in ms (default 5000). */
  readonly timeoutMs?: number;
  readonly retry?: WebhookRetryOptions;
  /**
   * Epoch ms after which no attempt starts (in Lambda: the invocation's end, less a margin). A retry
   * that could not finish before it is not made: the named error comes instead of a Lambda timeout.
   */
  readonly deadline?: number;
  readonly onRetry?: (event: WebhookRetryEvent) => void;
}

/** A Retry-After header in ms: delay-seconds or an HTTP date; `undefined` when absent or unreadable. */
export function retryAfterMs(header: string | null, now: number = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const value = header.trim();
  if (/^\d+(\.\d+)?$/.test(value)) return Math.round(Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function backoffMs(attempt: number, base: number, cap: number): number {
  const jitter = 0.8 + Math.random() * 0.4;
  return Math.min(cap, Math.round(base * 2 ** (attempt - 1) * jitter));
}

function describeNetworkError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error.name === 'TimeoutError') return 'timed out';
  const cause = error.cause as { code?: unknown } | undefined;
  const code = typeof cause?.code === 'string' ? ` (${cause.code})` : '';
  return `${error.name}: ${error.message}${code}`;
}

/**
 * Posts `payload` to the webhook at `url`. Resolves on a 2xx. Throws
 * {@link SlackWebhookRejectedError} at once on a 4xx other than 429 (no retry can fix it), and
 * {@link SlackWebhookUnavailableError} when 429, 5xx, network failures or timeouts outlast the
 * attempts.
 */
export async function postSlackWebhook(
  url: string,
  payload: SlackPayload,
  options: WebhookPostOptions = {},
): Promise<void> {
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 5000;
  const maxAttempts = Math.max(1, options.retry?.maxAttempts ?? 4);
  const baseDelayMs = options.retry?.baseDelayMs ?? 500;
  const maxDelayMs = options.retry?.maxDelayMs ?? 10_000;
  const body = JSON.stringify(payload);

  for (let attempt = 1; ; attempt++) {
    let status: number | undefined;
    let reason: string;
    let cause: unknown;
    let askedWaitMs: number | undefined;
    try {
      const response = await doFetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      // Slack answers a short code ("ok", "invalid_blocks"); read it all so the socket is freed.
      const text = (await response.text()).trim().slice(0, 200);
      if (response.ok) return;
      status = response.status;
      if (status !== 429 && status < 500) {
        throw new SlackWebhookRejectedError(status, text || response.statusText || 'no reason given');
      }
      reason = `HTTP ${status}${text ? ` ${text}` : ''}`;
      if (status === 429) askedWaitMs = retryAfterMs(response.headers.get('retry-after'));
    } catch (error) {
      if (error instanceof SlackWebhookRejectedError) throw error;
      cause = error;
      reason = describeNetworkError(error);
    }

    if (askedWaitMs !== undefined && askedWaitMs > maxDelayMs) {
      throw new SlackWebhookUnavailableError(
        `rate limited; Slack asks to wait ${Math.ceil(askedWaitMs / 1000)} s, more than the ${Math.ceil(maxDelayMs / 1000)} s allowed`,
        status,
        attempt,
        { cause },
      );
    }
    if (attempt >= maxAttempts) throw new SlackWebhookUnavailableError(reason, status, attempt, { cause });
    const delayMs = askedWaitMs ?? backoffMs(attempt, baseDelayMs, maxDelayMs);
    if (options.deadline !== undefined && Date.now() + delayMs + timeoutMs > options.deadline) {
      throw new SlackWebhookUnavailableError(`${reason}; no time left for another attempt`, status, attempt, {
        cause,
      });
    }
    options.onRetry?.({ attempt, delayMs, reason, ...(status === undefined ? {} : { status }) });
    await sleep(delayMs);
  }
}
