/**
 * The `slack-notify` Lambda function's wiring: Powertools Logger (with the webhook URL scrubbed from
 * every line), the webhook secret read through Powertools Parameters with caching, and the core
 * ({@link deliverSnsEvent}).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { type DeliveryResult, deliverSnsEvent, parseSlackNotifyEnv, parseWebhookSecret } from './deliver.js';

/** Values scrubbed from every log line: the webhook URL and its path (the token part). */
const secrets = new Set<string>();

function redact(_key: string, value: unknown): unknown {
  if (typeof value !== 'string' || secrets.size === 0) return value;
  let out = value;
  for (const secret of secrets) out = out.split(secret).join('[redacted]');
  return out;
}

/** The function's logger. */
export const logger = new Logger({ serviceName: 'quantshift-slack-notify', jsonReplacerFn: redact });

/** Time kept back from the invocation's end for the error to be thrown and logged, in ms. */
const DEADLINE_MARGIN_MS = 2_000;

/** How long a read secret is reused before Secrets Manager is asked again, in seconds. */
const SECRET_MAX_AGE_S = 300;

async function webhookUrl(secretArn: string): Promise<string> {
  const url = parseWebhookSecret(await getSecret(secretArn, { maxAge: SECRET_MAX_AGE_S }));
  secrets.add(url);
  const path = new URL(url).pathname;
  if (path.length >= 8) secrets.add(path);
  return url;
}

/** The SNS-subscribed handler: posts each record of the event to the Slack webhook. */
export function slackNotifyHandler(): (event: unknown, context: Context) => Promise<DeliveryResult> {
  const core = async (event: unknown, context: Context): Promise<DeliveryResult> => {
    const env = parseSlackNotifyEnv();
    return deliverSnsEvent(event, {
      webhookUrl: await webhookUrl(env.SLACK_WEBHOOK_SECRET_ARN),
      // Stop retrying in time to fail with the named error rather than a Lambda timeout.
      deadline: Date.now() + context.getRemainingTimeInMillis() - DEADLINE_MARGIN_MS,
      ...(env.DASHBOARD_URL === undefined ? {} : { dashboardUrl: env.DASHBOARD_URL }),
      log: {
        info: (message, fields) => logger.info(message, fields ?? {}),
        warn: (message, fields) => logger.warn(message, fields ?? {}),
        error: (message, fields) => logger.error(message, fields ?? {}),
      },
    });
  };
  return middy(core).use(injectLambdaContext(logger));
}
