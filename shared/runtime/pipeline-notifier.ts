import { SNSClient } from '@aws-sdk/client-sns';
import { SnsNotifier } from '../adapters/aws/sns-notifier.js';
import { ConfigError } from '../core/errors.js';
import type { Notifier } from '../core/ports/notifier.js';
import type { PipelineEnv } from './pipeline.js';

/** The pipeline's notify step publishes to the topic `TOPIC_ARN`; without it, publishing fails. */
export function pipelineNotifier(env: PipelineEnv): Notifier {
  if (env.TOPIC_ARN === undefined) {
    return {
      publish: async () => {
        throw new ConfigError('pipeline notify: TOPIC_ARN is not set');
      },
    };
  }
  return new SnsNotifier(new SNSClient({}), env.TOPIC_ARN);
}
