/** How urgent a notification is: `critical` wants someone now, `warning` today, `info` never. */
export type NotificationSeverity = 'info' | 'warning' | 'critical';

/**
 * What a notification is about: an `alert` (something went or may go wrong), a `report` (the
 * daily report, a summary), a `pipeline` outcome (walk-forward done or failed).
 */
export type NotificationKind = 'alert' | 'report' | 'pipeline';

/** The unit a figure is shown in: `12.34%`, `$1,234.56`, `3`, `5.0 bps`, `1.25`, `340 ms`. */
export type FigureUnit = '%' | '$' | 'count' | 'bps' | 'ratio' | 'ms';

/**
 * A number people compare against its limit, e.g. `{ label: 'Drawdown', value: 8.1, limit: 10, unit: '%' }`
 * shows as "8.10% / 10.00% (81% of limit)".
 */
export interface NotificationFigure {
  readonly label: string;
  readonly value: number;
  readonly limit?: number;
  readonly unit?: FigureUnit;
  /**
   * How `value` is judged against `limit`. `cap` (the default): the limit bounds the value's size
   * on the limit's side of zero, so a drawdown of 12% reaches a 10% limit and a day P&L of -2.5%
   * reaches a -2% limit, while a gain never reaches a loss limit. `floor`: the value must stay
   * above the limit (buying power, a minimum count) and reaches it at or below.
   */
  readonly limitKind?: 'cap' | 'floor';
}

/** A labelled value shown beside the text (symbol, strategy, order id). */
export interface NotificationField {
  readonly label: string;
  readonly value: string;
}

/**
 * A message for people: alerts, reports, pipeline outcomes. `subject`, `text` and `severity` are
 * all a caller must give; the structured fields are optional and make the message easier to read
 * in Slack (figures against their limits, labelled fields, next steps).
 */
export interface Notification {
  /** One line; SNS keeps at most 100 ASCII characters of it as the e-mail subject. */
  readonly subject: string;
  /** The body, in Slack markdown (`*bold*`, `• ` bullets, newlines). */
  readonly text: string;
  readonly severity: NotificationSeverity;
  readonly kind?: NotificationKind;
  /** Numbers against their limits, shown as fields ("value / limit"). */
  readonly figures?: readonly NotificationFigure[];
  readonly fields?: readonly NotificationField[];
  /** What the reader should do, one step each (e.g. "Run `npx quantshift resume` once fixed"). */
  readonly nextSteps?: readonly string[];
}

/** Sends notifications: SNS when deployed (then Slack), a log or a list locally. */
export interface Notifier {
  publish(notification: Notification): Promise<void>;
}
