import { describe, expect, it } from 'vitest';
import type { Notification } from '../../../shared/core/ports/notifier.js';
import { toChatbotNotification } from '../../../shared/notify/chatbot.js';
import { datapointFromReason } from '../../../shared/notify/cloudwatch.js';
import {
  escapeSlack,
  formatSlackMessage,
  plainTextPayload,
  SLACK_LIMITS,
  type SlackBlock,
  type SlackPayload,
} from '../../../shared/notify/slack.js';

const DASHBOARD =
  'https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards/dashboard/QuantShift-paper';

/** Every piece of text in a payload's blocks, by block type. */
function texts(payload: SlackPayload, type: SlackBlock['type']): string[] {
  return (payload.blocks ?? [])
    .filter((b) => b.type === type)
    .flatMap((b) => {
      if (b.type === 'header') return [b.text.text];
      if (b.type === 'section') return 'text' in b ? [b.text.text] : b.fields.map((f) => f.text);
      if (b.type === 'context') return b.elements.map((e) => e.text);
      return b.elements.map((e) => `${e.text.text} ${e.url}`);
    });
}

/** A message CloudWatch publishes to SNS when an alarm changes state (the shape as documented). */
function alarmMessage(state: 'ALARM' | 'OK', overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    AlarmName: 'QuantShift-paper-DailyLoss',
    AlarmDescription: 'Day loss past 2% of equity: the breaker halts new entries.',
    AWSAccountId: '123456789012',
    AlarmConfigurationUpdatedTimestamp: '2024-05-01T13:00:00.000+0000',
    NewStateValue: state,
    NewStateReason:
      state === 'ALARM'
        ? 'Threshold Crossed: 1 out of the last 1 datapoints [2.4 (01/05/24 15:45:00)] was greater than or equal to the threshold (2.0) (minimum 1 datapoint for OK -> ALARM transition).'
        : 'Threshold Crossed: 1 out of the last 1 datapoints [0.8 (01/05/24 16:00:00)] was not greater than or equal to the threshold (2.0) (minimum 1 datapoint for ALARM -> OK transition).',
    StateChangeTime: '2024-05-01T15:46:12.345+0000',
    Region: 'US East (N. Virginia)',
    AlarmArn: 'arn:aws:cloudwatch:us-east-1:123456789012:alarm:QuantShift-paper-DailyLoss',
    OldStateValue: state === 'ALARM' ? 'OK' : 'ALARM',
    OKActions: [],
    AlarmActions: ['arn:aws:sns:us-east-1:123456789012:quantshift-paper-alerts'],
    InsufficientDataActions: [],
    Trigger: {
      MetricName: 'DailyLossPct',
      Namespace: 'QuantShift',
      StatisticType: 'Statistic',
      Statistic: 'MAXIMUM',
      Unit: null,
      Dimensions: [{ value: 'paper', name: 'stage' }],
      Period: 300,
      EvaluationPeriods: 1,
      DatapointsToAlarm: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 2.0,
      TreatMissingData: 'missing',
      EvaluateLowSampleCountPercentile: '',
    },
    ...overrides,
  });
}

describe('formatSlackMessage: our custom notification', () => {
  const trip: Notification = {
    subject: 'Breaker trip: drawdown',
    severity: 'critical',
    kind: 'alert',
    text: '*Drawdown* passed its limit; new entries are blocked.',
    figures: [
      { label: 'Drawdown', value: 12, limit: 10, unit: '%' },
      { label: 'Day P&L', value: -1.7, limit: -2, unit: '%' },
      { label: 'Open orders', value: 2, unit: 'count' },
    ],
    fields: [{ label: 'Stage', value: 'paper' }],
    nextSteps: ['Run `npx quantshift resume` once reviewed'],
  };
  const message = JSON.stringify(toChatbotNotification(trip, { dashboardUrl: DASHBOARD, stage: 'paper' }));

  it('header with the severity marker, the text, figures as "value / limit" fields, next steps, dashboard button', () => {
    const payload = formatSlackMessage({
      message,
      subject: 'Breaker trip: drawdown',
      attributes: { severity: 'critical' },
    });
    expect(texts(payload, 'header')).toEqual([':rotating_light: CRITICAL: Breaker trip: drawdown']);
    const sections = texts(payload, 'section');
    expect(sections[0]).toBe('*Drawdown* passed its limit; new entries are blocked.');
    expect(sections).toContain('*Drawdown*\n12.00% / 10.00% (120% of limit, reached) :red_circle:');
    expect(sections).toContain('*Day P&amp;L*\n-1.70% / -2.00% (85% of limit) :large_yellow_circle:');
    expect(sections).toContain('*Open orders*\n2');
    expect(sections).toContain('*Stage*\npaper');
    expect(sections).toContain('*Next steps*\n• Run `npx quantshift resume` once reviewed');
    // The figures are shown once, as fields, not again inside the text.
    expect(sections.filter((s) => s.includes('120% of limit'))).toHaveLength(1);
    expect(texts(payload, 'actions')).toEqual([`Dashboard ${DASHBOARD}`]);
    expect(texts(payload, 'context')).toEqual(['`critical` `alert` `paper`']);
    expect(payload.text).toBe('[critical] :rotating_light: CRITICAL: Breaker trip: drawdown');
    expect(payload.unfurl_links).toBe(false);
  });

  it('reads the severity from the message when SNS gives no attribute', () => {
    const payload = formatSlackMessage({ message });
    expect(payload.text.startsWith('[critical]')).toBe(true);
  });

  it('a daily report without figures: a chart marker and the whole text', () => {
    const report = toChatbotNotification({
      subject: 'Daily report 2024-05-01: +120.00',
      severity: 'info',
      kind: 'report',
      text: '*QuantShift daily report 2024-05-01*\nEquity $100,120.00',
    });
    const payload = formatSlackMessage({ message: JSON.stringify(report) }, { dashboardUrl: DASHBOARD });
    expect(texts(payload, 'header')).toEqual([':bar_chart: Daily report 2024-05-01: +120.00']);
    expect(texts(payload, 'section')).toEqual(['*QuantShift daily report 2024-05-01*\nEquity $100,120.00']);
    expect(texts(payload, 'actions')).toEqual([`Dashboard ${DASHBOARD}`]);
  });

  it("someone else's custom notification: its description as written, a marker added", () => {
    const payload = formatSlackMessage({
      message: JSON.stringify({
        version: '1.0',
        source: 'custom',
        content: { description: 'Backup finished', nextSteps: ['Open the dashboard: javascript:alert(1)'] },
      }),
      subject: 'Backup',
    });
    expect(texts(payload, 'header')).toEqual([':information_source: Backup']);
    expect(texts(payload, 'section')).toEqual([
      'Backup finished',
      '*Next steps*\n• Open the dashboard: javascript:alert(1)',
    ]);
    expect(texts(payload, 'actions')).toEqual([]);
  });
});

describe('formatSlackMessage: CloudWatch alarms', () => {
  it('ALARM is critical, with the threshold as the limit and links to the alarm and the dashboard', () => {
    const payload = formatSlackMessage(
      {
        message: alarmMessage('ALARM'),
        subject: 'ALARM: "QuantShift-paper-DailyLoss" in US East (N. Virginia)',
      },
      { dashboardUrl: DASHBOARD },
    );
    expect(texts(payload, 'header')).toEqual([':rotating_light: ALARM: QuantShift-paper-DailyLoss']);
    expect(payload.text.startsWith('[critical]')).toBe(true);
    const sections = texts(payload, 'section');
    expect(sections[0]).toContain('Day loss past 2% of equity');
    expect(sections[0]).toContain(
      '[2.4 (01/05/24 15:45:00)] was greater than or equal to the threshold (2.0)',
    );
    expect(sections[0]).toContain('OK -&gt; ALARM');
    expect(sections).toContain('*Metric*\nQuantShift / DailyLossPct');
    expect(sections).toContain('*Value / threshold*\n2.4 / ≥ 2');
    expect(sections).toContain('*State*\nOK → ALARM');
    expect(sections).toContain('*Statistic*\nmaximum over 300 s × 1');
    expect(sections).toContain('*Dimensions*\nstage=paper');
    expect(texts(payload, 'context')).toEqual([
      '2024-05-01T15:46:12.345+0000 · US East (N. Virginia) · account 123456789012',
    ]);
    expect(texts(payload, 'actions')).toEqual([
      'Alarm https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:alarm/QuantShift-paper-DailyLoss',
      `Dashboard ${DASHBOARD}`,
    ]);
  });

  it('OK is info, "resolved"', () => {
    const payload = formatSlackMessage({ message: alarmMessage('OK') });
    expect(texts(payload, 'header')).toEqual([':white_check_mark: Resolved: QuantShift-paper-DailyLoss']);
    expect(payload.text).toBe(':white_check_mark: Resolved: QuantShift-paper-DailyLoss');
    expect(texts(payload, 'section')).toContain('*Value / threshold*\n0.8 / ≥ 2');
    expect(texts(payload, 'section')).toContain('*State*\nALARM → OK');
  });

  it('a composite alarm (no trigger) and a reason without a datapoint still render', () => {
    const payload = formatSlackMessage({
      message: alarmMessage('ALARM', {
        Trigger: undefined,
        AlarmRule: 'ALARM("a") OR ALARM("b")',
        NewStateReason: 'arn:aws:cloudwatch:...:alarm:a transitioned to ALARM',
        AlarmDescription: null,
      }),
    });
    expect(texts(payload, 'section')).toContain('*Rule*\nALARM("a") OR ALARM("b")');
    expect(texts(payload, 'section').some((s) => s.startsWith('*Value'))).toBe(false);
    expect(datapointFromReason('no datapoint here')).toBeUndefined();
    expect(datapointFromReason('datapoints [-1.5e-3 (01/05/24 15:45:00), 3 (...)]')).toBe(-0.0015);
  });
});

describe('formatSlackMessage: anything else is posted as text', () => {
  it('plain text with the subject as the title and the severity attribute', () => {
    const payload = formatSlackMessage({
      message: 'Exit at market: AAPL\nqs-paper-AAPL-20240501-exit: stop crossed',
      subject: 'Exit at market: AAPL',
      attributes: { severity: 'warning' },
    });
    expect(texts(payload, 'header')).toEqual([':warning: Exit at market: AAPL']);
    expect(texts(payload, 'section')).toEqual([
      'Exit at market: AAPL\nqs-paper-AAPL-20240501-exit: stop crossed',
    ]);
    expect(payload.text).toBe('[warning] :warning: Exit at market: AAPL');
  });

  it('an empty message and another service’s JSON are not dropped', () => {
    expect(texts(formatSlackMessage({ message: '' }), 'section')).toEqual(['(empty message)']);
    const event = formatSlackMessage({
      message: '{"detail-type":"EC2 Instance State-change","detail":{"state":"stopped"}}',
    });
    expect(texts(event, 'header')).toEqual([':information_source: Notification']);
    expect(texts(event, 'section')[0]).toMatch(/^```\{\n {2}"detail-type": "EC2 Instance State-change"/);
  });

  it('escapes &, < and > so a message cannot mention a channel or forge a link', () => {
    const payload = formatSlackMessage({
      message: 'Broker said: <!channel> & <https://evil.example|click here> > 5',
      subject: 'Order rejected <!here>',
    });
    expect(texts(payload, 'section')).toEqual([
      'Broker said: &lt;!channel&gt; &amp; &lt;https://evil.example|click here&gt; &gt; 5',
    ]);
    // Header text is plain_text: Slack shows it literally, nothing to escape; the preview is mrkdwn.
    expect(texts(payload, 'header')).toEqual([':information_source: Order rejected <!here>']);
    expect(payload.text).toBe(':information_source: Order rejected &lt;!here&gt;');
    expect(escapeSlack('a&b<c>d')).toBe('a&amp;b&lt;c&gt;d');

    const custom = formatSlackMessage({
      message: JSON.stringify(
        toChatbotNotification({
          subject: 'x',
          severity: 'info',
          text: '<@U123>',
          figures: [{ label: '<!everyone>', value: 1 }],
          fields: [{ label: 'Reason', value: '<https://a|b>' }],
        }),
      ),
    });
    expect(texts(custom, 'section')).toEqual([
      '&lt;@U123&gt;',
      '*&lt;!everyone&gt;*\n1',
      '*Reason*\n&lt;https://a|b&gt;',
    ]);
  });

  it('a long text becomes several sections within the limits, escaping never split', () => {
    const line = `${'&'.repeat(700)}\n`;
    const payload = formatSlackMessage({ message: line.repeat(20), subject: 'Long' });
    const sections = texts(payload, 'section');
    expect(sections.length).toBeGreaterThan(1);
    for (const s of sections) {
      expect(s.length).toBeLessThanOrEqual(SLACK_LIMITS.sectionText);
      // Nothing but whole entities, line breaks and the closing note: no entity cut in two.
      expect(s.replace(/&amp;|\n/g, '')).toMatch(/^(…\(cut: 14019 characters in all\))?$/);
    }
    expect(payload.blocks?.length).toBeLessThanOrEqual(SLACK_LIMITS.blocks);
    const huge = formatSlackMessage({ message: 'z'.repeat(300_000) });
    expect(texts(huge, 'section').join('').length).toBeLessThan(SLACK_LIMITS.body + 100);
    expect(texts(huge, 'section').at(-1)).toMatch(/\(cut: 300000 characters in all\)$/);
  });
});

describe('plainTextPayload', () => {
  it('the same message with no blocks, for when Slack refuses them', () => {
    const payload = formatSlackMessage({ message: alarmMessage('ALARM') }, { dashboardUrl: DASHBOARD });
    const plain = plainTextPayload(payload);
    expect(plain.blocks).toBeUndefined();
    expect(plain.text).toContain('*:rotating_light: ALARM: QuantShift-paper-DailyLoss*');
    expect(plain.text).toContain('*Value / threshold*: 2.4 / ≥ 2');
    expect(plain.text).toContain(`Dashboard: ${DASHBOARD}`);
  });
});
