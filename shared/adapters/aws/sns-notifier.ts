import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { Notification, Notifier } from '../../core/ports/notifier.js';
import { type ChatbotNotificationOptions, snsSubject, toChatbotNotification } from '../../notify/chatbot.js';

/** Options of {@link SnsNotifier}. */
export type SnsNotifierOptions = ChatbotNotificationOptions;

/**
 * A {@link Notifier} publishing to an SNS topic, which fans out to Slack through AWS Chatbot or the
 * `slack-notify` function (docs/alerts.md). The message is a Chatbot custom notification (JSON);
 * the `Subject` is the subject as at most 100 ASCII characters; the message attributes `severity`
 * and `kind` let subscriptions filter (e.g. only `critical` to a pager).
 */
export class SnsNotifier implements Notifier {
  constructor(
    private readonly client: SNSClient,
    private readonly topicArn: string,
    private readonly options: SnsNotifierOptions = {},
  ) {}

  async publish(notification: Notification): Promise<void> {
    await this.client.send(
      new PublishCommand({
        TopicArn: this.topicArn,
        Subject: snsSubject(notification.subject),
        Message: JSON.stringify(toChatbotNotification(notification, this.options)),
        MessageAttributes: {
          severity: { DataType: 'String', StringValue: notification.severity },
          kind: { DataType: 'String', StringValue: notification.kind ?? 'alert' },
        },
      }),
    );
  }
}
