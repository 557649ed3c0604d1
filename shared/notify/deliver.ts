/**
 * The `slack-notify` function's core, free of Powertools and AWS: parse the SNS event, format each
 * record, post it to the webhook. Tests run it against a local HTTP server standing in for Slack.
 */
import * as z from 'zod';
import {
  SlackDeliveryError,
  SlackNotifyEnvError,
  SlackWebhookRejectedError,
  SlackWebhookSecretError,
  SnsEventError,
} from './errors.js';
import { formatSlackMessage, plainTextPayload } from './slack.js';
import { postSlackWebhook, type WebhookPostOptions } from './webhook.js';

/** An SNS event as Lambda receives it (one record in practice; a batch is handled). */
export const snsEventSchema = z.object({
  Records: z
    .array(
      z.looseObject({
        EventSource: z.literal('aws:sns'),
        Sns: z.looseObject({
          MessageId: z.string().min(1),
          Message: z.string(),
          Subject: z.string().nullish(),
          Timestamp: z.string().optional(),
          TopicArn: z.string().optional(),
          MessageAttributes: z
            .record(z.string(), z.looseObject({ Type: z.string(), Value: z.string() }))
            .optional(),
        }),
      }),
    )
    .min(1),
});

/** An SNS event. */
export type SnsEvent = z.infer<typeof snsEventSchema>;

/** The event as an {@link SnsEvent}, or {@link SnsEventError} naming the first bad field. */
export function parseSnsEvent(event: unknown): SnsEvent {
  const parsed = snsEventSchema.safeParse(event);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.') || 'event'}: ${i.message}`).join('; ');
    throw new SnsEventError(`slack-notify: not an SNS event: ${detail}`, { cause: parsed.error });
  }
  return parsed.data;
}

/** The `slack-notify` function's environment. */
export const slackNotifyEnvSchema = z.object({
  /** Secrets Manager secret: JSON `{"url": "https://hooks.slack.com/services/..."}`, or the URL itself. */
  SLACK_WEBHOOK_SECRET_ARN: z.string().startsWith('arn:'),
  /** The CloudWatch dashboard, linked from every message that does not link one itself. */
  DASHBOARD_URL: z.url({ protocol: /^https?$/ }).optional(),
});

/** The `slack-notify` function's environment. */
export type SlackNotifyEnv = z.infer<typeof slackNotifyEnvSchema>;

/** The environment, or {@link SlackNotifyEnvError} naming the variable. */
export function parseSlackNotifyEnv(env: NodeJS.ProcessEnv = process.env): SlackNotifyEnv {
  const parsed = slackNotifyEnvSchema.safeParse(env);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new SlackNotifyEnvError(`slack-notify environment: ${detail}`, { cause: parsed.error });
  }
  return parsed.data;
}

const webhookSecretJson = z.object({ url: z.string() });

/**
 * The webhook URL in a secret's value: JSON `{"url": "https://..."}` or the URL as plain text
 * (string or binary secret). https only, except http to a loopback host (a local stand-in for
 * Slack). Throws {@link SlackWebhookSecretError}, which never quotes the value.
 */
export function parseWebhookSecret(value: unknown): string {
  const text =
    typeof value === 'string'
      ? value.trim()
      : value instanceof Uint8Array
        ? new TextDecoder().decode(value).trim()
        : undefined;
  if (text === undefined || text === '') throw new SlackWebhookSecretError('the secret is empty or not text');
  let candidate = text;
  if (text.startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new SlackWebhookSecretError('the secret starts with "{" but is not JSON', {
        cause: error instanceof Error ? new Error(error.name) : undefined,
      });
    }
    const parsed = webhookSecretJson.safeParse(json);
    if (!parsed.success) throw new SlackWebhookSecretError('the JSON has no string "url"');
    candidate = parsed.data.url.trim();
  }
  let url: URL;
  try {
    url = new URL(candidate);
  } catch {
    throw new SlackWebhookSecretError('the value is not a URL');
  }
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new SlackWebhookSecretError(
      `the URL must be https (http only to a local server), not ${url.protocol}`,
    );
  }
  return candidate;
}

/** Where the core writes what it does (Powertools Logger in Lambda). Never given the URL. */
export interface DeliveryLog {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Options of {@link deliverSnsEvent}. */
export interface DeliverOptions extends Omit<WebhookPostOptions, 'onRetry'> {
  /** The incoming-webhook URL (the credential). */
  readonly webhookUrl: string;
  readonly dashboardUrl?: string;
  readonly log?: DeliveryLog;
}

/** What {@link deliverSnsEvent} did. */
export interface DeliveryResult {
  readonly posted: number;
  /** Messages posted as plain text because Slack refused their blocks. */
  readonly postedAsText: number;
}

const quiet: DeliveryLog = { info: () => {}, warn: () => {}, error: () => {} };

/**
 * Posts every record of an SNS event to the webhook, one after another, formatted by
 * {@link formatSlackMessage}. When Slack refuses the blocks (HTTP 400), the message is posted again
 * as plain text rather than lost. Throws {@link SnsEventError} for a bad event and
 * {@link SlackDeliveryError} (after trying every record) when any record could not be posted, so
 * Lambda retries and its failure destination keeps the event.
 */
export async function deliverSnsEvent(event: unknown, options: DeliverOptions): Promise<DeliveryResult> {
  const { Records } = parseSnsEvent(event);
  const log = options.log ?? quiet;
  const failures: { messageId: string; error: Error }[] = [];
  let posted = 0;
  let postedAsText = 0;
  for (const record of Records) {
    const sns = record.Sns;
    const attributes: Record<string, string> = {};
    for (const [name, attr] of Object.entries(sns.MessageAttributes ?? {})) {
      if (attr.Type === 'String') attributes[name] = attr.Value;
    }
    const payload = formatSlackMessage(
      { message: sns.Message, subject: sns.Subject ?? null, attributes },
      options.dashboardUrl === undefined ? {} : { dashboardUrl: options.dashboardUrl },
    );
    const fields = { messageId: sns.MessageId, subject: sns.Subject ?? undefined };
    const post: WebhookPostOptions = {
      ...options,
      onRetry: (retry) => log.warn('Slack webhook attempt failed; retrying', { ...fields, ...retry }),
    };
    try {
      try {
        await postSlackWebhook(options.webhookUrl, payload, post);
      } catch (error) {
        if (!(error instanceof SlackWebhookRejectedError && error.status === 400)) throw error;
        log.warn('Slack refused the blocks; posting the message as plain text', {
          ...fields,
          reason: error.reason,
        });
        await postSlackWebhook(options.webhookUrl, plainTextPayload(payload), post);
        postedAsText++;
      }
      posted++;
      log.info('posted to Slack', fields);
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      log.error('could not post to Slack', { ...fields, error: e.message });
      failures.push({ messageId: sns.MessageId, error: e });
    }
  }
  if (failures.length > 0) throw new SlackDeliveryError(failures, Records.length);
  return { posted, postedAsText };
}
