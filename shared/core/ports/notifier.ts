/** A message for people: alerts, reports, pipeline outcomes. */
export interface Notification {
  readonly subject: string;
  readonly text: string;
  readonly severity: 'info' | 'warning' | 'critical';
}

/** Sends notifications: SNS when deployed (then Slack), a log or a list locally. */
export interface Notifier {
  publish(notification: Notification): Promise<void>;
}
