import { describe, expect, it } from 'vitest';
import type { Notification } from '../../../shared/core/ports/notifier.js';
import {
  CHATBOT_LIMITS,
  chatbotNotificationSchema,
  snsSubject,
  toChatbotNotification,
} from '../../../shared/notify/chatbot.js';
import { figureText, formatValue, limitStatus } from '../../../shared/notify/format.js';

const trip: Notification = {
  subject: 'Breaker trip: drawdown',
  severity: 'critical',
  kind: 'alert',
  text: 'Drawdown passed its limit; new entries are blocked.',
  figures: [
    { label: 'Drawdown', value: 12, limit: 10, unit: '%' },
    { label: 'Equity', value: 88_000, unit: '$' },
  ],
  fields: [{ label: 'Strategy', value: 'ma-crossover-atr' }],
  nextSteps: ['Review the positions, then run `npx quantshift resume`'],
};

describe('toChatbotNotification', () => {
  it('is a valid Chatbot custom notification: version 1.0, source custom, a description, the limits', () => {
    const message = toChatbotNotification(trip, {
      dashboardUrl: 'https://console.aws.amazon.com/cloudwatch/home#dashboards/dashboard/QuantShift-paper',
      stage: 'paper',
    });
    expect(chatbotNotificationSchema.parse(message)).toEqual(message);
    expect(message.version).toBe('1.0');
    expect(message.source).toBe('custom');
    expect(message.content.textType).toBe('client-markdown');
    expect(message.content.title).toBe(':rotating_light: CRITICAL: Breaker trip: drawdown');
    expect(message.content.description).toBe(
      [
        'Drawdown passed its limit; new entries are blocked.',
        '',
        '• *Drawdown:* 12.00% / 10.00% (120% of limit, reached)',
        '• *Equity:* $88,000.00',
        '• *Strategy:* ma-crossover-atr',
      ].join('\n'),
    );
    expect(message.content.nextSteps).toEqual([
      'Review the positions, then run `npx quantshift resume`',
      'Open the dashboard: https://console.aws.amazon.com/cloudwatch/home#dashboards/dashboard/QuantShift-paper',
    ]);
    expect(message.content.keywords).toEqual(['critical', 'alert', 'paper']);
    expect(message.metadata?.eventType).toBe('quantshift-alert');
    expect(message.metadata?.additionalContext).toMatchObject({
      producer: 'quantshift',
      severity: 'critical',
      kind: 'alert',
      stage: 'paper',
    });
    expect(JSON.parse(message.metadata?.additionalContext?.figures ?? '')).toEqual(trip.figures);
  });

  it('keeps an old-style notification (subject, text, severity) as it was, with a marker', () => {
    const message = toChatbotNotification({
      subject: 'Daily report 2024-05-01: +120.00',
      severity: 'info',
      text: '*report*',
    });
    expect(chatbotNotificationSchema.safeParse(message).success).toBe(true);
    expect(message.content.title).toBe(':information_source: Daily report 2024-05-01: +120.00');
    expect(message.content.description).toBe('*report*');
    expect(message.content.nextSteps).toBeUndefined();
    expect(message.metadata?.additionalContext).toEqual({ producer: 'quantshift', severity: 'info' });
  });

  it('cuts a long text, never the figures, and every field stays within its limit', () => {
    const message = toChatbotNotification({
      ...trip,
      subject: `Long ${'s'.repeat(400)}`,
      text: 'x'.repeat(20_000),
      nextSteps: ['y'.repeat(1_000)],
      kind: 'report',
    });
    expect(chatbotNotificationSchema.safeParse(message).success).toBe(true);
    expect(message.content.description.length).toBeLessThanOrEqual(CHATBOT_LIMITS.description);
    expect(message.content.description).toContain('x…\n\n• *Drawdown:* 12.00% / 10.00%');
    expect(message.content.title?.length).toBe(CHATBOT_LIMITS.title);
    expect(message.content.nextSteps?.[0]?.length).toBe(CHATBOT_LIMITS.nextStep);
  });

  it('uses the subject as the description when there is no text and nothing else', () => {
    const message = toChatbotNotification({ subject: 'Heartbeat', severity: 'info', text: '  ' });
    expect(message.content.description).toBe('Heartbeat');
  });
});

describe('snsSubject', () => {
  it('is printable ASCII, one line, at most 100 characters, never empty', () => {
    expect(snsSubject('Daily report 2024-05-01: +120.00')).toBe('Daily report 2024-05-01: +120.00');
    expect(snsSubject('Exit — AAPL’s stop…\nnext line')).toBe("Exit - AAPL's stop... next line");
    expect(snsSubject('🚨 Breaker ✓ trip')).toBe('Breaker trip');
    expect(snsSubject(' \n ')).toBe('QuantShift notification');
    const long = snsSubject(`Walk-forward ${'a'.repeat(200)}`);
    expect(long).toHaveLength(100);
    expect(long.endsWith('...')).toBe(true);
    expect(long).toMatch(/^[\x20-\x7e]+$/);
  });
});

describe('figures against their limits', () => {
  it('formats values in their units', () => {
    expect(formatValue(12.345, '%')).toBe('12.35%');
    expect(formatValue(-1234.5, '$')).toBe('-$1,234.50');
    expect(formatValue(1200, 'count')).toBe('1,200');
    expect(formatValue(5, 'bps')).toBe('5.0 bps');
    expect(formatValue(340.4, 'ms')).toBe('340 ms');
    expect(formatValue(1.23456)).toBe('1.2346');
    expect(formatValue(Number.NaN, '%')).toBe('n/a');
  });

  it('a cap: reached at or past the limit on its side of zero, a share of it below', () => {
    expect(figureText({ label: 'Drawdown', value: 8.1, limit: 10, unit: '%' })).toBe(
      '8.10% / 10.00% (81% of limit)',
    );
    expect(figureText({ label: 'Drawdown', value: 10, limit: 10, unit: '%' })).toBe(
      '10.00% / 10.00% (100% of limit, reached)',
    );
    // A day loss against a negative limit, and a gain that never reaches it.
    expect(limitStatus({ label: 'Day P&L', value: -2.5, limit: -2, unit: '%' })).toEqual({
      usage: 1.25,
      reached: true,
    });
    expect(figureText({ label: 'Day P&L', value: 1.5, limit: -2, unit: '%' })).toBe(
      '1.50% / -2.00% (0% of limit)',
    );
    expect(limitStatus({ label: 'Rejects', value: 0, limit: 0 })).toEqual({ reached: false });
  });

  it('a floor: reached at or below the limit', () => {
    expect(
      figureText({ label: 'Buying power', value: 900, limit: 1000, unit: '$', limitKind: 'floor' }),
    ).toBe('$900.00 / $1,000.00 (floor, reached)');
    expect(limitStatus({ label: 'Buying power', value: 5000, limit: 1000, limitKind: 'floor' })).toEqual({
      reached: false,
    });
  });

  it('no limit: the value alone', () => {
    expect(figureText({ label: 'Orders', value: 3, unit: 'count' })).toBe('3');
    expect(limitStatus({ label: 'Orders', value: 3 })).toBeUndefined();
  });
});
