/**
 * The Slack delivery's named failures. None of their messages carries the webhook URL (the URL is
 * the credential): they name the status, Slack's error code or the network failure only.
 */
import { ConfigError, QuantShiftError } from '../core/errors.js';

/** The Slack webhook secret is neither JSON `{"url": "https://..."}` nor an https URL itself. */
export class SlackWebhookSecretError extends ConfigError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(
      `the Slack webhook secret must be JSON {"url": "https://hooks.slack.com/services/..."} or that URL itself: ${reason}`,
      options,
    );
  }
}

/** The `slack-notify` function's environment is incomplete or wrong; the message names the variable. */
export class SlackNotifyEnvError extends ConfigError {}

/** The Lambda event is not an SNS event; the message names the field. */
export class SnsEventError extends QuantShiftError {}

/** A Slack webhook failure; subclasses name the conditions callers branch on. */
export class SlackWebhookError extends QuantShiftError {
  constructor(
    message: string,
    /** The last HTTP status, absent for a network failure or a timeout. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Slack refused the message for good (a 4xx other than 429), with its error code in `reason`
 * (`invalid_payload`, `invalid_blocks`, `no_text`, `channel_not_found`, `channel_is_archived`,
 * `action_prohibited`, `no_service`, `invalid_token`).
 */
export class SlackWebhookRejectedError extends SlackWebhookError {
  constructor(
    status: number,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`Slack webhook refused the message: HTTP ${status} ${reason}`, status, options);
  }
}

/**
 * Slack kept answering 429 or 5xx, or could not be reached or timed out, after every allowed
 * attempt (or asked, with Retry-After, for a longer wait than allowed). Thrown out of the handler so
 * Lambda retries the delivery and its failure destination keeps the event.
 */
export class SlackWebhookUnavailableError extends SlackWebhookError {
  constructor(
    message: string,
    status: number | undefined,
    /** Attempts made. */
    readonly attempts: number,
    options?: { cause?: unknown },
  ) {
    super(`Slack webhook unavailable after ${attempts} attempt(s): ${message}`, status, options);
  }
}

/** One or more records of an SNS event could not be posted; `failures` has each one's error. */
export class SlackDeliveryError extends QuantShiftError {
  constructor(
    readonly failures: readonly { readonly messageId: string; readonly error: Error }[],
    readonly records: number,
  ) {
    const first = failures[0]?.error;
    super(
      `posting to Slack failed for ${failures.length} of ${records} SNS message(s): ${first?.message ?? 'unknown error'}`,
      { cause: failures.length === 1 ? first : new AggregateError(failures.map((f) => f.error)) },
    );
  }
}
