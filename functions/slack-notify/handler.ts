/** Subscribed to the alerts topic: posts each SNS message to the Slack incoming webhook (docs/alerts.md). */
import { slackNotifyHandler } from '../../shared/notify/lambda.js';

export const handler = slackNotifyHandler();
