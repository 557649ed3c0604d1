/**
 * Text shared by both Slack paths: figures and fields as lines, severity markers, limits. Pure.
 * The SNS notifier writes the details block into the Chatbot description and the webhook formatter
 * recognises the very same block (and renders the figures as Block Kit fields instead).
 */
import type {
  FigureUnit,
  NotificationField,
  NotificationFigure,
  NotificationKind,
  NotificationSeverity,
} from '../core/ports/notifier.js';

/** The emoji shortcode that opens a title, per severity (a report at `info` gets a chart). */
export function severityEmoji(severity: NotificationSeverity, kind?: NotificationKind): string {
  if (severity === 'critical') return ':rotating_light:';
  if (severity === 'warning') return ':warning:';
  return kind === 'report' ? ':bar_chart:' : ':information_source:';
}

/** The title marker: the emoji, and the word for `critical` and `warning` (readable without emoji). */
export function severityMarker(severity: NotificationSeverity, kind?: NotificationKind): string {
  const emoji = severityEmoji(severity, kind);
  return severity === 'info' ? emoji : `${emoji} ${severity.toUpperCase()}:`;
}

const TITLE_MARKERS: readonly [RegExp, NotificationSeverity][] = [
  [/^:rotating_light:/, 'critical'],
  [/^:warning:/, 'warning'],
  [/^:(information_source|bar_chart|white_check_mark):/, 'info'],
];

/** The severity a title's marker says, if it opens with one of {@link severityMarker}'s emoji. */
export function severityFromTitle(title: string): NotificationSeverity | undefined {
  return TITLE_MARKERS.find(([re]) => re.test(title.trimStart()))?.[1];
}

function grouped(x: number, digits: number): string {
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A number in its unit: `12.34%`, `-$1,234.56`, `1,200`, `5.0 bps`, `1.25`, `340 ms`; `n/a` if not finite. */
export function formatValue(value: number, unit?: FigureUnit): string {
  if (!Number.isFinite(value)) return 'n/a';
  switch (unit) {
    case '%':
      return `${grouped(value, 2)}%`;
    case '$':
      return `${value < 0 ? '-' : ''}$${grouped(Math.abs(value), 2)}`;
    case 'count':
      return grouped(value, Number.isInteger(value) ? 0 : 2);
    case 'bps':
      return `${grouped(value, 1)} bps`;
    case 'ms':
      return `${grouped(value, 0)} ms`;
    default:
      return value.toLocaleString('en-US', { maximumFractionDigits: 4 });
  }
}

/** Where a figure stands against its limit. */
export interface LimitStatus {
  /** `value / limit` for a cap on the limit's side of zero (1 = at the limit); absent for a floor. */
  readonly usage?: number;
  readonly reached: boolean;
}

/** Where `figure` stands against its limit, or `undefined` when it has none. */
export function limitStatus(figure: NotificationFigure): LimitStatus | undefined {
  const { value, limit } = figure;
  if (limit === undefined || !Number.isFinite(limit) || !Number.isFinite(value)) return undefined;
  if (figure.limitKind === 'floor') return { reached: value <= limit };
  if (limit === 0) return { reached: value !== 0 };
  const usage = Math.max(0, value / limit);
  return { usage, reached: usage >= 1 };
}

/** A figure's value against its limit: `12.00% / 10.00% (120% of limit, reached)`. */
export function figureText(figure: NotificationFigure): string {
  const value = formatValue(figure.value, figure.unit);
  if (figure.limit === undefined) return value;
  const limit = formatValue(figure.limit, figure.unit);
  const status = limitStatus(figure);
  const notes: string[] = [];
  if (status?.usage !== undefined) notes.push(`${Math.round(status.usage * 100)}% of limit`);
  if (figure.limitKind === 'floor') notes.push('floor');
  if (status?.reached) notes.push('reached');
  return `${value} / ${limit}${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`;
}

/**
 * The details block written after the text of a Chatbot description: one bullet per figure, then
 * per field. Empty when there is neither.
 */
export function detailsMarkdown(
  figures: readonly NotificationFigure[] = [],
  fields: readonly NotificationField[] = [],
): string {
  return [
    ...figures.map((f) => `• *${f.label}:* ${figureText(f)}`),
    ...fields.map((f) => `• *${f.label}:* ${f.value}`),
  ].join('\n');
}

/** `text` cut to `max` characters, ending with an ellipsis when cut. */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 1) return text.slice(0, Math.max(0, max));
  let end = max - 1;
  // Never split a surrogate pair (an emoji) in two.
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…`;
}

/** Prefix of a `nextSteps` entry that links the dashboard; the webhook turns it into a button. */
export const DASHBOARD_STEP_PREFIX = 'Open the dashboard: ';
