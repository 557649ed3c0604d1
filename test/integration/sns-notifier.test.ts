/**
 * SnsNotifier through the real AWS SDK to a local HTTP server standing in for SNS (query
 * protocol): what reaches the topic is a valid Chatbot custom notification.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SNSClient } from '@aws-sdk/client-sns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SnsNotifier } from '../../shared/adapters/aws/sns-notifier.js';
import { chatbotNotificationSchema } from '../../shared/notify/chatbot.js';
import { formatSlackMessage } from '../../shared/notify/slack.js';

const TOPIC = 'arn:aws:sns:us-east-1:123456789012:quantshift-paper-alerts';
const DASHBOARD =
  'https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards/dashboard/QuantShift-paper';

let server: Server;
let endpoint: string;
const published: URLSearchParams[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      published.push(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end(
        `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>m-${published.length}</MessageId></PublishResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishResponse>`,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const client = () =>
  new SNSClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });

/** The message attributes of a query-protocol Publish, by name. */
function attributes(params: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 1; params.has(`MessageAttributes.entry.${i}.Name`); i++) {
    out[params.get(`MessageAttributes.entry.${i}.Name`) ?? ''] =
      params.get(`MessageAttributes.entry.${i}.Value.StringValue`) ?? '';
  }
  return out;
}

describe('SnsNotifier', () => {
  it('publishes a Chatbot custom notification, the severity and kind attributes, an ASCII subject of at most 100 characters', async () => {
    const notifier = new SnsNotifier(client(), TOPIC, { dashboardUrl: DASHBOARD, stage: 'paper' });
    await notifier.publish({
      subject: `Breaker trip: drawdown — ${'very long '.repeat(20)}`,
      severity: 'critical',
      kind: 'alert',
      text: 'Drawdown passed its limit; new entries are blocked.',
      figures: [{ label: 'Drawdown', value: 12.5, limit: 10, unit: '%' }],
      nextSteps: ['Run `npx quantshift resume` once reviewed'],
    });
    const params = published.at(-1) as URLSearchParams;
    expect(params.get('Action')).toBe('Publish');
    expect(params.get('TopicArn')).toBe(TOPIC);
    const subject = params.get('Subject') ?? '';
    expect(subject.length).toBeLessThanOrEqual(100);
    expect(subject).toMatch(/^Breaker trip: drawdown - very long [ -~]*\.\.\.$/);
    expect(attributes(params)).toEqual({ severity: 'critical', kind: 'alert' });

    const message = JSON.parse(params.get('Message') ?? '');
    expect(chatbotNotificationSchema.safeParse(message).success).toBe(true);
    expect(message.version).toBe('1.0');
    expect(message.source).toBe('custom');
    expect(message.content.textType).toBe('client-markdown');
    expect(message.content.title).toMatch(/^:rotating_light: CRITICAL: Breaker trip: drawdown — very long/);
    expect(message.content.description).toBe(
      'Drawdown passed its limit; new entries are blocked.\n\n• *Drawdown:* 12.50% / 10.00% (125% of limit, reached)',
    );
    expect(message.content.nextSteps).toEqual([
      'Run `npx quantshift resume` once reviewed',
      `Open the dashboard: ${DASHBOARD}`,
    ]);

    // What the webhook function makes of the very same message.
    const payload = formatSlackMessage({
      message: params.get('Message') ?? '',
      subject,
      attributes: attributes(params),
    });
    expect(JSON.stringify(payload.blocks)).toContain('12.50% / 10.00% (125% of limit, reached) :red_circle:');
  });

  it('an existing caller ({subject, text, severity}) still publishes, as a custom notification', async () => {
    await new SnsNotifier(client(), TOPIC).publish({
      subject: 'Daily report 2024-05-01: +120.00',
      severity: 'info',
      text: '*QuantShift daily report 2024-05-01*',
    });
    const params = published.at(-1) as URLSearchParams;
    expect(params.get('Subject')).toBe('Daily report 2024-05-01: +120.00');
    expect(attributes(params)).toEqual({ severity: 'info', kind: 'alert' });
    const message = chatbotNotificationSchema.parse(JSON.parse(params.get('Message') ?? ''));
    expect(message.content.description).toBe('*QuantShift daily report 2024-05-01*');
    expect(message.content.title).toBe(':information_source: Daily report 2024-05-01: +120.00');
  });
});
