/**
 * AWS Chatbot (Amazon Q Developer in chat applications) custom notifications: the JSON an SNS
 * message must carry for Chatbot to post it to Slack at all (it drops any other text silently).
 * Schema: https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html. Pure.
 */
import * as z from 'zod';
import type { Notification, NotificationFigure } from '../core/ports/notifier.js';
import { DASHBOARD_STEP_PREFIX, detailsMarkdown, severityMarker, truncate } from './format.js';

/** Chatbot's documented length limits, in characters. */
export const CHATBOT_LIMITS = {
  title: 250,
  description: 8000,
  nextStep: 350,
  keyword: 75,
} as const;

/** A Chatbot custom notification, with the documented limits (what we publish always passes). */
export const chatbotNotificationSchema = z.object({
  version: z.literal('1.0'),
  source: z.literal('custom'),
  id: z.string().optional(),
  content: z.object({
    textType: z.literal('client-markdown').optional(),
    title: z.string().max(CHATBOT_LIMITS.title).optional(),
    description: z.string().min(1).max(CHATBOT_LIMITS.description),
    nextSteps: z.array(z.string().max(CHATBOT_LIMITS.nextStep)).optional(),
    keywords: z.array(z.string().max(CHATBOT_LIMITS.keyword)).optional(),
  }),
  metadata: z
    .object({
      threadId: z.string().optional(),
      summary: z.string().optional(),
      /** Matched by custom-action attachments, whose `NotificationType` is `^[a-zA-Z0-9-]+$`. */
      eventType: z
        .string()
        .regex(/^[a-zA-Z0-9-]+$/)
        .optional(),
      relatedResources: z.array(z.string()).optional(),
      additionalContext: z.record(z.string(), z.string()).optional(),
      enableCustomActions: z.boolean().optional(),
    })
    .optional(),
});

/** A Chatbot custom notification. */
export type ChatbotNotification = z.infer<typeof chatbotNotificationSchema>;

/** Options of {@link toChatbotNotification} (and of the SNS notifier). */
export interface ChatbotNotificationOptions {
  /** The CloudWatch dashboard, linked as the last next step. */
  readonly dashboardUrl?: string;
  /** The deployment stage (`paper`, `live`), added to the keywords and the context. */
  readonly stage?: string;
}

/** `producer` in `metadata.additionalContext` of every notification QuantShift publishes. */
export const PRODUCER = 'quantshift';

const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();

/**
 * A notification as a Chatbot custom notification: the severity marker and subject as the title,
 * the text then the figures and fields (against their limits) as the description, the next steps
 * and a dashboard link, keywords (severity, kind, stage). `metadata.additionalContext` keeps the
 * severity, kind and the figures and fields as JSON for the webhook formatter. Every limit holds:
 * the text is cut (with an ellipsis) before anything else is.
 */
export function toChatbotNotification(
  notification: Notification,
  options: ChatbotNotificationOptions = {},
): ChatbotNotification {
  const subject = oneLine(notification.subject) || 'QuantShift notification';
  const figures = notification.figures ?? [];
  const fields = notification.fields ?? [];
  const details = truncate(detailsMarkdown(figures, fields), CHATBOT_LIMITS.description / 2);
  const text = notification.text.trim();
  const budget = CHATBOT_LIMITS.description - (details === '' ? 0 : details.length + 2);
  const body = truncate(text, budget);
  const description = [body, details].filter((part) => part !== '').join('\n\n') || subject;

  const nextSteps = (notification.nextSteps ?? []).map((s) => truncate(s, CHATBOT_LIMITS.nextStep));
  if (options.dashboardUrl !== undefined) nextSteps.push(`${DASHBOARD_STEP_PREFIX}${options.dashboardUrl}`);
  const keywords = [notification.severity, notification.kind, options.stage]
    .filter((k): k is string => k !== undefined && k !== '')
    .map((k) => truncate(k, CHATBOT_LIMITS.keyword));

  const context: Record<string, string> = { producer: PRODUCER, severity: notification.severity };
  if (notification.kind !== undefined) context.kind = notification.kind;
  if (options.stage !== undefined) context.stage = options.stage;
  if (figures.length > 0) context.figures = JSON.stringify(figures.map(plainFigure));
  if (fields.length > 0)
    context.fields = JSON.stringify(fields.map((f) => ({ label: f.label, value: f.value })));

  return {
    version: '1.0',
    source: 'custom',
    content: {
      textType: 'client-markdown',
      title: truncate(
        `${severityMarker(notification.severity, notification.kind)} ${subject}`,
        CHATBOT_LIMITS.title,
      ),
      description,
      ...(nextSteps.length > 0 ? { nextSteps } : {}),
      ...(keywords.length > 0 ? { keywords } : {}),
    },
    metadata: {
      summary: truncate(subject, CHATBOT_LIMITS.title),
      eventType: `quantshift-${notification.kind ?? 'alert'}`,
      additionalContext: context,
    },
  };
}

function plainFigure(f: NotificationFigure): NotificationFigure {
  return {
    label: f.label,
    value: f.value,
    ...(f.limit === undefined ? {} : { limit: f.limit }),
    ...(f.unit === undefined ? {} : { unit: f.unit }),
    ...(f.limitKind === undefined ? {} : { limitKind: f.limitKind }),
  };
}

const ASCII_LOOKALIKES: Record<string, string> = {
  '…': '...',
  '–': '-',
  '—': '-',
  '‘': "'",
  '’': "'",
  '“': '"',
  '”': '"',
  '×': 'x',
  '•': '*',
};

/**
 * An SNS `Subject`: printable ASCII only (SNS refuses anything else, and line breaks), at most 100
 * characters (cut with `...`), never empty.
 */
export function snsSubject(subject: string): string {
  const ascii = Array.from(subject, (c) => ASCII_LOOKALIKES[c] ?? (/^[\x20-\x7e]$/.test(c) ? c : ' ')).join(
    '',
  );
  const line = oneLine(ascii);
  if (line === '') return 'QuantShift notification';
  return line.length <= 100 ? line : `${line.slice(0, 97).trimEnd()}...`;
}
