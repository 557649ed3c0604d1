/**
 * An SNS message as a Slack incoming-webhook payload (Block Kit). Pure. It understands three kinds
 * of message:
 * - a Chatbot custom notification (ours, from the SNS notifier, or anyone's);
 * - a CloudWatch alarm state change (ALARM is critical, OK is info "resolved");
 * - anything else, posted as plain text: a message is never dropped.
 *
 * Every piece of text that came through SNS is escaped (`&`, `<`, `>`) before it goes into
 * `mrkdwn`, so nothing in a message can ping a channel or forge a link.
 */
import * as z from 'zod';
import type { NotificationField, NotificationFigure, NotificationSeverity } from '../core/ports/notifier.js';
import {
  alarmConsoleUrl,
  type CloudWatchAlarm,
  comparisonSymbol,
  datapointFromReason,
  parseCloudWatchAlarm,
  parseJson,
} from './cloudwatch.js';
import {
  DASHBOARD_STEP_PREFIX,
  detailsMarkdown,
  figureText,
  formatValue,
  limitStatus,
  severityEmoji,
  severityFromTitle,
  truncate,
} from './format.js';

/** What an SNS record gives the formatter. */
export interface SnsMessageInput {
  readonly message: string;
  readonly subject?: string | null;
  /** String message attributes (`severity`, `kind`), when the publisher set them. */
  readonly attributes?: Readonly<Record<string, string>>;
}

/** Options of {@link formatSlackMessage}. */
export interface SlackFormatOptions {
  /** The CloudWatch dashboard, linked by a button when the message does not link one itself. */
  readonly dashboardUrl?: string;
}

/** A Block Kit text object. */
export interface SlackText {
  readonly type: 'plain_text' | 'mrkdwn';
  readonly text: string;
  readonly emoji?: boolean;
}

/** The Block Kit blocks the formatter emits. */
export type SlackBlock =
  | { readonly type: 'header'; readonly text: SlackText }
  | { readonly type: 'section'; readonly text: SlackText }
  | { readonly type: 'section'; readonly fields: readonly SlackText[] }
  | { readonly type: 'context'; readonly elements: readonly SlackText[] }
  | {
      readonly type: 'actions';
      readonly elements: readonly {
        readonly type: 'button';
        readonly text: SlackText;
        readonly url: string;
        readonly style?: 'primary' | 'danger';
      }[];
    };

/** An incoming-webhook payload: `text` is the notification preview (and all of it without blocks). */
export interface SlackPayload {
  readonly text: string;
  readonly blocks?: readonly SlackBlock[];
  readonly unfurl_links?: boolean;
  readonly unfurl_media?: boolean;
}

/** Slack's Block Kit limits, in characters or items. */
export const SLACK_LIMITS = {
  header: 150,
  sectionText: 3000,
  field: 2000,
  fieldsPerSection: 10,
  blocks: 50,
  buttonText: 75,
  url: 3000,
  /** Our own cap on the body of one message (Slack cuts messages at 40,000). */
  body: 12_000,
  text: 39_000,
} as const;

/** `text` safe for `mrkdwn`: Slack's three control characters escaped. */
export function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** What the renderer makes of a message, before blocks. Text in `mrkdwn` parts is escaped already. */
interface Rendered {
  readonly severity: NotificationSeverity;
  /** Plain text with the emoji marker. */
  readonly title: string;
  /** Raw (unescaped) body text; escaped and split when rendered. */
  readonly body: string;
  readonly fields: readonly string[];
  readonly nextSteps: readonly string[];
  readonly context: readonly string[];
  readonly buttons: readonly { readonly text: string; readonly url: string }[];
}

const severitySchema = z.enum(['info', 'warning', 'critical']);
const kindSchema = z.enum(['alert', 'report', 'pipeline']);

const figuresSchema = z.array(
  z.object({
    label: z.string(),
    value: z.number(),
    limit: z.number().optional(),
    unit: z.enum(['%', '$', 'count', 'bps', 'ratio', 'ms']).optional(),
    limitKind: z.enum(['cap', 'floor']).optional(),
  }),
);
const fieldsSchema = z.array(z.object({ label: z.string(), value: z.string() }));

/** A custom notification as anyone may publish it: only the description is required. */
const customNotificationSchema = z.looseObject({
  version: z.string(),
  source: z.literal('custom'),
  content: z.looseObject({
    title: z.string().optional(),
    description: z.string(),
    nextSteps: z.array(z.string()).optional(),
    keywords: z.array(z.string()).optional(),
  }),
  metadata: z
    .looseObject({
      summary: z.string().optional(),
      additionalContext: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
});

type CustomNotification = z.infer<typeof customNotificationSchema>;

/** An SNS message as a Slack webhook payload (see the module comment for what it understands). */
export function formatSlackMessage(input: SnsMessageInput, options: SlackFormatOptions = {}): SlackPayload {
  const json = parseJson(input.message);
  const custom = json === undefined ? undefined : customNotificationSchema.safeParse(json);
  let rendered: Rendered;
  if (custom?.success) rendered = renderCustom(custom.data, input, options);
  else {
    const alarm = json === undefined ? undefined : parseCloudWatchAlarm(input.message);
    rendered = alarm === undefined ? renderPlain(input, json, options) : renderAlarm(alarm, options);
  }
  return toPayload(rendered);
}

/** The same message without blocks: for when Slack refuses the blocks (`invalid_blocks`). */
export function plainTextPayload(payload: SlackPayload): SlackPayload {
  const lines: string[] = [];
  for (const block of payload.blocks ?? []) {
    if (block.type === 'header') lines.push(`*${escapeSlack(block.text.text)}*`);
    else if (block.type === 'section') {
      if ('text' in block) lines.push(block.text.text);
      else lines.push(...block.fields.map((f) => f.text.replace('\n', ': ')));
    } else if (block.type === 'context') lines.push(block.elements.map((e) => e.text).join(' · '));
    else lines.push(...block.elements.map((b) => `${escapeSlack(b.text.text)}: ${b.url}`));
  }
  const text = lines.length > 0 ? lines.join('\n') : payload.text;
  return { text: truncate(text, SLACK_LIMITS.text), unfurl_links: false, unfurl_media: false };
}

function attribute(input: SnsMessageInput, name: string): string | undefined {
  return input.attributes?.[name];
}

function pickSeverity(...candidates: (string | undefined)[]): NotificationSeverity | undefined {
  for (const c of candidates) {
    const parsed = severitySchema.safeParse(c);
    if (parsed.success) return parsed.data;
  }
  return undefined;
}

function parseJsonAs<T>(schema: z.ZodType<T>, text: string | undefined): T | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** `url` as a button link: http(s) only (never `javascript:` and the like), within Slack's length limit. */
function linkUrl(url: string | undefined): string | undefined {
  if (url === undefined || url.length > SLACK_LIMITS.url) return undefined;
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : undefined;
  } catch {
    return undefined;
  }
}

function renderCustom(n: CustomNotification, input: SnsMessageInput, options: SlackFormatOptions): Rendered {
  const context = n.metadata?.additionalContext ?? {};
  const rawTitle = n.content.title ?? n.metadata?.summary ?? input.subject ?? 'Notification';
  const severity =
    pickSeverity(attribute(input, 'severity'), context.severity) ?? severityFromTitle(rawTitle) ?? 'info';
  const kind = kindSchema.safeParse(attribute(input, 'kind') ?? context.kind).data;
  const title =
    severityFromTitle(rawTitle) === undefined ? `${severityEmoji(severity, kind)} ${rawTitle}` : rawTitle;

  // Our own notifications carry their figures and fields as JSON too: when the description ends
  // with exactly the block the notifier wrote from them, show them as fields instead.
  const figures = parseJsonAs(figuresSchema, context.figures) ?? [];
  const fields = parseJsonAs(fieldsSchema, context.fields) ?? [];
  let body = n.content.description;
  let shownFields: string[] = [];
  const details = detailsMarkdown(figures, fields);
  if (details !== '' && body.endsWith(details)) {
    body = body.slice(0, body.length - details.length).trimEnd();
    shownFields = [...figures.map(figureField), ...fields.map(textField)];
  }

  let dashboard: string | undefined;
  const nextSteps: string[] = [];
  for (const step of n.content.nextSteps ?? []) {
    const url = step.startsWith(DASHBOARD_STEP_PREFIX)
      ? linkUrl(step.slice(DASHBOARD_STEP_PREFIX.length).trim())
      : undefined;
    if (url !== undefined) dashboard ??= url;
    else nextSteps.push(step);
  }
  dashboard ??= linkUrl(options.dashboardUrl);
  const keywords = n.content.keywords ?? [];
  return {
    severity,
    title,
    body,
    fields: shownFields,
    nextSteps,
    context: keywords.length > 0 ? [keywords.map((k) => `\`${escapeSlack(k)}\``).join(' ')] : [],
    buttons: dashboard === undefined ? [] : [{ text: 'Dashboard', url: dashboard }],
  };
}

function figureField(figure: NotificationFigure): string {
  const status = limitStatus(figure);
  const marker = status?.reached
    ? ' :red_circle:'
    : status?.usage !== undefined && status.usage >= 0.8
      ? ' :large_yellow_circle:'
      : '';
  return `*${escapeSlack(figure.label)}*\n${escapeSlack(figureText(figure))}${marker}`;
}

function textField(field: NotificationField): string {
  return `*${escapeSlack(field.label)}*\n${escapeSlack(field.value)}`;
}

const ALARM_STATES = {
  ALARM: { severity: 'critical', emoji: ':rotating_light:', label: 'ALARM' },
  OK: { severity: 'info', emoji: ':white_check_mark:', label: 'Resolved' },
  INSUFFICIENT_DATA: { severity: 'warning', emoji: ':grey_question:', label: 'Insufficient data' },
} as const satisfies Record<string, { severity: NotificationSeverity; emoji: string; label: string }>;

function renderAlarm(alarm: CloudWatchAlarm, options: SlackFormatOptions): Rendered {
  const state = ALARM_STATES[alarm.NewStateValue];
  const trigger = alarm.Trigger ?? undefined;
  const fields: string[] = [];
  if (trigger?.MetricName != null) {
    const metric = [trigger.Namespace, trigger.MetricName].filter((x) => x != null).join(' / ');
    fields.push(`*Metric*\n${escapeSlack(metric)}`);
  } else if (alarm.AlarmRule != null) {
    fields.push(`*Rule*\n${escapeSlack(truncate(alarm.AlarmRule, 500))}`);
  }
  if (trigger?.Threshold != null) {
    const op = comparisonSymbol(trigger.ComparisonOperator);
    const value = datapointFromReason(alarm.NewStateReason);
    const limit = `${op} ${formatValue(trigger.Threshold)}`.trim();
    const shown = value === undefined ? `threshold ${limit}` : `${formatValue(value)} / ${limit}`;
    fields.push(`*Value / threshold*\n${escapeSlack(shown)}`);
  }
  fields.push(`*State*\n${escapeSlack(`${alarm.OldStateValue ?? '?'} → ${alarm.NewStateValue}`)}`);
  const statistic = trigger?.Statistic ?? trigger?.ExtendedStatistic;
  if (statistic != null && trigger?.Period != null) {
    const evaluations = trigger.EvaluationPeriods != null ? ` × ${trigger.EvaluationPeriods}` : '';
    fields.push(
      `*Statistic*\n${escapeSlack(`${statistic.toLowerCase()} over ${trigger.Period} s${evaluations}`)}`,
    );
  }
  const dimensions = trigger?.Dimensions ?? [];
  if (dimensions.length > 0) {
    fields.push(`*Dimensions*\n${escapeSlack(dimensions.map((d) => `${d.name}=${d.value}`).join(', '))}`);
  }
  const body = [alarm.AlarmDescription, alarm.NewStateReason]
    .filter((x) => x != null && x !== '')
    .join('\n\n');
  const context = [
    alarm.StateChangeTime,
    alarm.Region,
    alarm.AWSAccountId ? `account ${alarm.AWSAccountId}` : null,
  ]
    .filter((x): x is string => x != null && x !== '')
    .map(escapeSlack)
    .join(' · ');
  const buttons: { text: string; url: string }[] = [];
  const consoleUrl = linkUrl(alarmConsoleUrl(alarm));
  if (consoleUrl !== undefined) buttons.push({ text: 'Alarm', url: consoleUrl });
  const dashboard = linkUrl(options.dashboardUrl);
  if (dashboard !== undefined) buttons.push({ text: 'Dashboard', url: dashboard });
  return {
    severity: state.severity,
    title: `${state.emoji} ${state.label}: ${alarm.AlarmName}`,
    body,
    fields,
    nextSteps: [],
    context: context === '' ? [] : [context],
    buttons,
  };
}

function renderPlain(input: SnsMessageInput, json: unknown, options: SlackFormatOptions): Rendered {
  const severity = pickSeverity(attribute(input, 'severity')) ?? 'info';
  const kind = kindSchema.safeParse(attribute(input, 'kind')).data;
  const subject = input.subject?.trim() || 'Notification';
  const text = input.message.trim();
  // Another service's JSON event: shown as a code block, not re-flowed.
  const body = json === undefined ? text : `\`\`\`${JSON.stringify(json, null, 2)}\`\`\``;
  const dashboard = linkUrl(options.dashboardUrl);
  return {
    severity,
    title: `${severityEmoji(severity, kind)} ${subject}`,
    body: body === '' ? '(empty message)' : body,
    fields: [],
    nextSteps: [],
    context: [],
    buttons: dashboard === undefined ? [] : [{ text: 'Dashboard', url: dashboard }],
  };
}

/** `raw` escaped and split into pieces of at most `max` characters, at line breaks where possible. */
function escapedChunks(raw: string, max: number): string[] {
  const chunks: string[] = [];
  let current = '';
  const push = () => {
    if (current !== '') chunks.push(current);
    current = '';
  };
  for (const line of raw.split('\n')) {
    const escaped = escapeSlack(line);
    const joined = current === '' ? escaped : `${current}\n${escaped}`;
    if (joined.length <= max) {
      current = joined;
      continue;
    }
    push();
    if (escaped.length <= max) {
      current = escaped;
      continue;
    }
    for (const c of line) {
      const e = escapeSlack(c);
      if (current.length + e.length > max) push();
      current += e;
    }
  }
  push();
  return chunks;
}

function toPayload(r: Rendered): SlackPayload {
  const blocks: SlackBlock[] = [
    {
      type: 'header',
      text: { type: 'plain_text', text: truncate(r.title, SLACK_LIMITS.header), emoji: true },
    },
  ];
  const tail: SlackBlock[] = [];
  for (let i = 0; i < r.fields.length; i += SLACK_LIMITS.fieldsPerSection) {
    tail.push({
      type: 'section',
      fields: r.fields
        .slice(i, i + SLACK_LIMITS.fieldsPerSection)
        .map((text) => ({ type: 'mrkdwn', text: truncate(text, SLACK_LIMITS.field) })),
    });
  }
  if (r.nextSteps.length > 0) {
    const steps = r.nextSteps.map((s) => `• ${escapeSlack(s)}`).join('\n');
    tail.push({
      type: 'section',
      text: { type: 'mrkdwn', text: truncate(`*Next steps*\n${steps}`, SLACK_LIMITS.sectionText) },
    });
  }
  if (r.context.length > 0) {
    tail.push({
      type: 'context',
      elements: r.context.map((text) => ({ type: 'mrkdwn', text: truncate(text, SLACK_LIMITS.sectionText) })),
    });
  }
  if (r.buttons.length > 0) {
    tail.push({
      type: 'actions',
      elements: r.buttons.map((b) => ({
        type: 'button',
        text: { type: 'plain_text', text: truncate(b.text, SLACK_LIMITS.buttonText) },
        url: b.url,
      })),
    });
  }
  const room = SLACK_LIMITS.blocks - blocks.length - tail.length;
  const body =
    r.body.length > SLACK_LIMITS.body
      ? `${truncate(r.body, SLACK_LIMITS.body)}\n(cut: ${r.body.length} characters in all)`
      : r.body;
  const chunks = escapedChunks(body, SLACK_LIMITS.sectionText).slice(0, Math.max(0, room));
  for (const text of chunks) blocks.push({ type: 'section', text: { type: 'mrkdwn', text } });
  blocks.push(...tail);
  const preview = `${r.severity === 'info' ? '' : `[${r.severity}] `}${r.title}`;
  return {
    text: escapeSlack(truncate(preview, SLACK_LIMITS.header * 2)),
    blocks,
    unfurl_links: false,
    unfurl_media: false,
  };
}
