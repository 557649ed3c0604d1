/**
 * The slack-notify function against a real local HTTP server standing in for Slack's incoming
 * webhook (and, for the whole handler, another standing in for Secrets Manager).
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { localLambdaContext } from '../../shared/adapters/local/lambda-context.js';
import { toChatbotNotification } from '../../shared/notify/chatbot.js';
import { type DeliveryLog, deliverSnsEvent, parseWebhookSecret } from '../../shared/notify/deliver.js';
import {
  SlackDeliveryError,
  SlackWebhookRejectedError,
  SlackWebhookSecretError,
  SlackWebhookUnavailableError,
  SnsEventError,
} from '../../shared/notify/errors.js';
import { retryAfterMs } from '../../shared/notify/webhook.js';
import { captureProcessOutput } from '../helpers/process-output.js';

type Reply = { status: number; body?: string; headers?: Record<string, string> } | 'hang';

interface Received {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly at: number;
}

/** A local server answering from a script of replies (then `fallback`), recording every request. */
async function startServer(fallback: Reply = { status: 200, body: 'ok' }) {
  const received: Received[] = [];
  const script: Reply[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      });
      const reply = script.shift() ?? fallback;
      if (reply === 'hang') return;
      res.writeHead(reply.status, { 'content-type': 'text/plain', ...reply.headers });
      res.end(reply.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    received,
    script,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

type LocalServer = Awaited<ReturnType<typeof startServer>>;

const TOKEN_PATH = '/services/T0LOCAL01/B0LOCAL02/s3cr3tW3bh00kT0k3n';

function snsEvent(...messages: { message: string; subject?: string; severity?: string }[]) {
  return {
    Records: messages.map((m, i) => ({
      EventSource: 'aws:sns',
      EventVersion: '1.0',
      EventSubscriptionArn: 'arn:aws:sns:us-east-1:123456789012:quantshift-paper-alerts:sub',
      Sns: {
        Type: 'Notification',
        MessageId: `msg-${i + 1}`,
        TopicArn: 'arn:aws:sns:us-east-1:123456789012:quantshift-paper-alerts',
        Subject: m.subject ?? null,
        Message: m.message,
        Timestamp: '2024-05-01T15:46:12.345Z',
        SignatureVersion: '1',
        Signature: 'x',
        SigningCertUrl: 'https://sns.us-east-1.amazonaws.com/cert.pem',
        UnsubscribeUrl: 'https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe',
        MessageAttributes:
          m.severity === undefined ? {} : { severity: { Type: 'String', Value: m.severity } },
      },
    })),
  };
}

const trip = JSON.stringify(
  toChatbotNotification({
    subject: 'Breaker trip: drawdown',
    severity: 'critical',
    text: 'New entries are blocked.',
    figures: [{ label: 'Drawdown', value: 12, limit: 10, unit: '%' }],
  }),
);

function recordingLog() {
  const lines: string[] = [];
  const log: DeliveryLog = {
    info: (m, f) => lines.push(`INFO ${m} ${JSON.stringify(f ?? {})}`),
    warn: (m, f) => lines.push(`WARN ${m} ${JSON.stringify(f ?? {})}`),
    error: (m, f) => lines.push(`ERROR ${m} ${JSON.stringify(f ?? {})}`),
  };
  return { lines, log };
}

let slack: LocalServer;
const webhookUrl = () => `${slack.origin}${TOKEN_PATH}`;
const fastRetry = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2_000 };

beforeAll(async () => {
  slack = await startServer();
});
afterAll(async () => {
  await slack.close();
});
afterEach(() => {
  slack.received.length = 0;
  slack.script.length = 0;
});

describe('deliverSnsEvent against a local Slack webhook', () => {
  it('posts each record as Block Kit JSON; the log names the message, never the URL', async () => {
    const { lines, log } = recordingLog();
    const result = await deliverSnsEvent(
      snsEvent(
        { message: trip, subject: 'Breaker trip: drawdown' },
        { message: 'plain words', subject: 'Hi', severity: 'warning' },
      ),
      { webhookUrl: webhookUrl(), dashboardUrl: 'https://example.com/dashboard', log, retry: fastRetry },
    );
    expect(result).toEqual({ posted: 2, postedAsText: 0 });
    expect(slack.received.map((r) => r.path)).toEqual([TOKEN_PATH, TOKEN_PATH]);
    expect(slack.received[0]?.headers['content-type']).toMatch(/^application\/json/);
    const first = JSON.parse(slack.received[0]?.body ?? '');
    expect(first.blocks[0]).toEqual({
      type: 'header',
      text: { type: 'plain_text', text: ':rotating_light: CRITICAL: Breaker trip: drawdown', emoji: true },
    });
    expect(JSON.stringify(first.blocks)).toContain('12.00% / 10.00% (120% of limit, reached) :red_circle:');
    const second = JSON.parse(slack.received[1]?.body ?? '');
    expect(second.blocks[0].text.text).toBe(':warning: Hi');
    expect(second.blocks.at(-1).elements[0].url).toBe('https://example.com/dashboard');
    expect(lines).toEqual([
      'INFO posted to Slack {"messageId":"msg-1","subject":"Breaker trip: drawdown"}',
      'INFO posted to Slack {"messageId":"msg-2","subject":"Hi"}',
    ]);
  });

  it('429 with Retry-After: waits as asked, then posts', async () => {
    slack.script.push({ status: 429, body: 'rate_limited', headers: { 'Retry-After': '1' } });
    const { lines, log } = recordingLog();
    const result = await deliverSnsEvent(snsEvent({ message: trip }), {
      webhookUrl: webhookUrl(),
      log,
      retry: fastRetry,
    });
    expect(result.posted).toBe(1);
    expect(slack.received).toHaveLength(2);
    const [a, b] = slack.received;
    expect((b?.at ?? 0) - (a?.at ?? 0)).toBeGreaterThanOrEqual(950);
    expect(b?.body).toBe(a?.body);
    expect(lines[0]).toMatch(
      /^WARN Slack webhook attempt failed; retrying .*"attempt":1,"delayMs":1000.*"status":429/,
    );
    expect(lines.join('\n')).not.toContain(TOKEN_PATH);
  });

  it('500 every time: a named error after every attempt, so Lambda retries', async () => {
    const failing = await startServer({ status: 500, body: 'internal_error' });
    try {
      const { lines, log } = recordingLog();
      const error = await deliverSnsEvent(snsEvent({ message: trip }), {
        webhookUrl: `${failing.origin}${TOKEN_PATH}`,
        log,
        retry: fastRetry,
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SlackDeliveryError);
      const cause = (error as SlackDeliveryError).cause;
      expect(cause).toBeInstanceOf(SlackWebhookUnavailableError);
      expect(cause).toMatchObject({ status: 500, attempts: 3 });
      expect((error as Error).message).toBe(
        'posting to Slack failed for 1 of 1 SNS message(s): Slack webhook unavailable after 3 attempt(s): HTTP 500 internal_error',
      );
      expect(failing.received).toHaveLength(3);
      expect(lines.filter((l) => l.startsWith('WARN'))).toHaveLength(2);
      expect(lines.at(-1)).toMatch(/^ERROR could not post to Slack/);
      expect(`${lines.join('\n')}${(error as Error).message}`).not.toContain(failing.origin + TOKEN_PATH);
    } finally {
      await failing.close();
    }
  });

  it('a server that never answers: each attempt times out, then the named error', async () => {
    slack.script.push('hang', 'hang');
    const error = await deliverSnsEvent(snsEvent({ message: trip }), {
      webhookUrl: webhookUrl(),
      timeoutMs: 150,
      retry: { maxAttempts: 2, baseDelayMs: 1 },
    }).catch((e: unknown) => e);
    expect((error as Error).cause).toBeInstanceOf(SlackWebhookUnavailableError);
    expect((error as Error).message).toMatch(/after 2 attempt\(s\): timed out$/);
    expect(slack.received).toHaveLength(2);
  });

  it('a Retry-After longer than allowed ends the retries at once', async () => {
    slack.script.push({ status: 429, headers: { 'Retry-After': '120' } });
    const error = await deliverSnsEvent(snsEvent({ message: trip }), {
      webhookUrl: webhookUrl(),
      retry: { maxAttempts: 5, baseDelayMs: 1, maxDelayMs: 5_000 },
    }).catch((e: unknown) => e);
    expect((error as Error).cause).toBeInstanceOf(SlackWebhookUnavailableError);
    expect((error as Error).message).toMatch(/Slack asks to wait 120 s, more than the 5 s allowed/);
    expect(slack.received).toHaveLength(1);
  });

  it('no retry that could outlast the invocation: the named error comes first', async () => {
    slack.script.push({ status: 503, body: 'service_unavailable' });
    const error = await deliverSnsEvent(snsEvent({ message: trip }), {
      webhookUrl: webhookUrl(),
      retry: fastRetry,
      timeoutMs: 5_000,
      deadline: Date.now() + 2_000,
    }).catch((e: unknown) => e);
    expect((error as Error).cause).toBeInstanceOf(SlackWebhookUnavailableError);
    expect((error as Error).message).toMatch(
      /HTTP 503 service_unavailable; no time left for another attempt$/,
    );
    expect(slack.received).toHaveLength(1);
  });

  it('blocks refused (400 invalid_blocks): the same message is posted again as plain text', async () => {
    slack.script.push({ status: 400, body: 'invalid_blocks' });
    const { lines, log } = recordingLog();
    const result = await deliverSnsEvent(snsEvent({ message: trip }), {
      webhookUrl: webhookUrl(),
      log,
      retry: fastRetry,
    });
    expect(result).toEqual({ posted: 1, postedAsText: 1 });
    const retried = JSON.parse(slack.received[1]?.body ?? '');
    expect(retried.blocks).toBeUndefined();
    expect(retried.text).toContain('*:rotating_light: CRITICAL: Breaker trip: drawdown*');
    expect(retried.text).toContain('New entries are blocked.');
    expect(lines[0]).toMatch(/^WARN Slack refused the blocks.*"reason":"invalid_blocks"/);
  });

  it('a webhook that no longer exists (404 no_service) fails at once, not retried', async () => {
    slack.script.push({ status: 404, body: 'no_service' });
    const error = await deliverSnsEvent(snsEvent({ message: trip }), {
      webhookUrl: webhookUrl(),
      retry: fastRetry,
    }).catch((e: unknown) => e);
    expect((error as Error).cause).toBeInstanceOf(SlackWebhookRejectedError);
    expect((error as Error).cause).toMatchObject({ status: 404, reason: 'no_service' });
    expect(slack.received).toHaveLength(1);
  });

  it('a batch: every record is tried; the error counts the failures', async () => {
    slack.script.push({ status: 200, body: 'ok' }, { status: 403, body: 'action_prohibited' });
    const error = await deliverSnsEvent(snsEvent({ message: 'one' }, { message: 'two' }), {
      webhookUrl: webhookUrl(),
      retry: fastRetry,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SlackDeliveryError);
    expect((error as SlackDeliveryError).failures.map((f) => f.messageId)).toEqual(['msg-2']);
    expect((error as Error).message).toMatch(/^posting to Slack failed for 1 of 2 SNS message\(s\)/);
    expect(slack.received).toHaveLength(2);
  });

  it('refuses an event that is not from SNS, naming the field', async () => {
    await expect(deliverSnsEvent({ Records: [] }, { webhookUrl: webhookUrl() })).rejects.toThrow(
      SnsEventError,
    );
    await expect(
      deliverSnsEvent({ Records: [{ EventSource: 'aws:sqs', Sns: {} }] }, { webhookUrl: webhookUrl() }),
    ).rejects.toThrow(/not an SNS event: Records\.0\.EventSource/);
    expect(slack.received).toHaveLength(0);
  });
});

describe('the webhook secret and Retry-After', () => {
  it('accepts JSON {"url"} or the URL itself; refuses anything else without quoting it', () => {
    const url = 'https://hooks.slack.com/services/T000/B000/XXXXSECRET';
    expect(parseWebhookSecret(JSON.stringify({ url }))).toBe(url);
    expect(parseWebhookSecret(`  ${url}\n`)).toBe(url);
    expect(parseWebhookSecret(new TextEncoder().encode(url))).toBe(url);
    expect(parseWebhookSecret(`http://127.0.0.1:9999${TOKEN_PATH}`)).toBe(
      `http://127.0.0.1:9999${TOKEN_PATH}`,
    );
    for (const bad of [
      '',
      '{"url": 3}',
      '{not json XXXXSECRET',
      'hooks.slack.com/XXXXSECRET',
      'http://hooks.slack.com/XXXXSECRET',
      undefined,
    ]) {
      const error = (() => {
        try {
          parseWebhookSecret(bad);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(SlackWebhookSecretError);
      expect(String((error as Error).message)).not.toContain('XXXXSECRET');
      expect(JSON.stringify((error as Error).cause ?? null)).not.toContain('XXXXSECRET');
      expect(String((error as Error).cause ?? '')).not.toContain('XXXXSECRET');
    }
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs('0.5')).toBe(500);
    expect(retryAfterMs('Wed, 01 May 2024 15:46:14 GMT', Date.parse('2024-05-01T15:46:12Z'))).toBe(2000);
    expect(retryAfterMs(null)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
  });
});

describe('the slack-notify handler (Powertools, Secrets Manager), end to end on local servers', () => {
  const savedEnv = { ...process.env };
  let secrets: LocalServer;
  let output: () => string = () => '';

  beforeAll(async () => {
    secrets = await startServer({
      status: 200,
      body: JSON.stringify({
        ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:quantshift/paper/slack-webhook-AbCdEf',
        Name: 'quantshift/paper/slack-webhook',
        SecretString: JSON.stringify({ url: `${slack.origin}${TOKEN_PATH}` }),
        VersionId: 'v1',
        VersionStages: ['AWSCURRENT'],
        CreatedDate: 1_714_000_000,
      }),
      headers: { 'content-type': 'application/x-amz-json-1.1' },
    });
    Object.assign(process.env, {
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.origin,
      SLACK_WEBHOOK_SECRET_ARN:
        'arn:aws:secretsmanager:us-east-1:123456789012:secret:quantshift/paper/slack-webhook-AbCdEf',
      DASHBOARD_URL: 'https://example.com/dashboard',
      POWERTOOLS_LOG_LEVEL: 'INFO',
    });
    output = captureProcessOutput();
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    process.env = savedEnv;
    await secrets.close();
  });

  it('reads the secret once (cached), posts, retries a 429, fails loudly on a 404; the URL is never logged', async () => {
    const { handler } = await import('../../functions/slack-notify/handler.js');
    const context = () => localLambdaContext('slack-notify', `req-${Math.random().toString(16).slice(2)}`);

    await expect(
      handler(snsEvent({ message: trip, subject: 'Breaker trip: drawdown' }), context()),
    ).resolves.toEqual({
      posted: 1,
      postedAsText: 0,
    });
    slack.script.push({ status: 429, body: 'rate_limited', headers: { 'Retry-After': '0' } });
    await expect(handler(snsEvent({ message: 'second' }), context())).resolves.toMatchObject({ posted: 1 });
    slack.script.push({ status: 404, body: 'no_service' });
    await expect(handler(snsEvent({ message: 'third' }), context())).rejects.toThrow(SlackDeliveryError);

    expect(secrets.received).toHaveLength(1);
    expect(secrets.received[0]?.headers['x-amz-target']).toBe('secretsmanager.GetSecretValue');
    expect(slack.received.map((r) => r.path)).toEqual([TOKEN_PATH, TOKEN_PATH, TOKEN_PATH, TOKEN_PATH]);
    expect(output()).toMatch(/"level":"INFO","message":"posted to Slack"/);
    expect(output()).toMatch(/"message":"Slack webhook attempt failed; retrying"/);
    expect(output()).toMatch(/"message":"could not post to Slack"/);
    expect(output()).toMatch(/"function_request_id":"req-/);
    expect(output()).not.toContain(TOKEN_PATH);
    expect(output()).not.toContain('s3cr3tW3bh00kT0k3n');
  });
});
