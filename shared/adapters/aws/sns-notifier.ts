import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { Notification, Notifier } from '../../core/ports/notifier.js';

/** A {@link Notifier} publishing to an SNS topic (which fans out to Slack). */
export class SnsNotifier implements Notifier {
  constructor(
    private readonly client: SNSClient,
    private readonly topicArn: string,
  ) {}

  async publish(notification: Notification): Promise<void> {
    await this.client.send(
      new PublishCommand({
        TopicArn: this.topicArn,
        Subject: notification.subject.slice(0, 100),
        Message: notification.text,
        MessageAttributes: { severity: { DataType: 'String', StringValue: notification.severity } },
      }),
    );
  }
}
