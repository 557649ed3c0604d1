import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { z } from 'zod';
import { AlpacaMarketData } from '../adapters/alpaca/market-data.js';
import { S3ObjectStore } from '../adapters/aws/s3-store.js';
import { SnsNotifier } from '../adapters/aws/sns-notifier.js';
import { DynamoStateStore, stateStoreDocumentClient } from '../adapters/dynamodb/state-store.js';
import { ConfigError } from '../core/errors.js';
import type { Notifier } from '../core/ports/notifier.js';
import { createPipelineSteps, type PipelineSteps } from '../pipeline/steps.js';

/** The environment every pipeline function gets from the stack. */
export const pipelineEnvSchema = z.object({
  DATA_BUCKET: z.string().min(1),
  TOPIC_ARN: z.string().startsWith('arn:').optional(),
  ALPACA_SECRET_ARN: z.string().startsWith('arn:').optional(),
  QUANTSHIFT_COMMIT: z.string().min(1).default('unknown'),
  PIPELINE_DISTRIBUTED_THRESHOLD: z.coerce.number().int().positive().default(50_000),
  /** The trading state table: the aggregate step records the walk-forward decision there (the live gate). */
  STATE_TABLE: z.string().min(1).optional(),
});

const alpacaSecretSchema = z.object({ keyId: z.string().min(1), secret: z.string().min(1) });

function parseEnv() {
  const parsed = pipelineEnvSchema.safeParse(process.env);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`pipeline function environment: ${detail}`, { cause: parsed.error });
  }
  return parsed.data;
}

let steps: PipelineSteps | undefined;

/**
 * The pipeline steps over AWS adapters, built once per cold start from the environment. Secrets
 * reach the function as an ARN and are read only when the prepare step needs market data.
 */
export function deployedPipelineSteps(): PipelineSteps {
  if (steps !== undefined) return steps;
  const env = parseEnv();
  const notifier: Notifier =
    env.TOPIC_ARN === undefined
      ? {
          publish: async () => {
            throw new ConfigError('pipeline notify: TOPIC_ARN is not set');
          },
        }
      : new SnsNotifier(new SNSClient({}), env.TOPIC_ARN);
  steps = createPipelineSteps({
    store: new S3ObjectStore(new S3Client({}), env.DATA_BUCKET),
    notifier,
    now: () => new Date(),
    gitCommit: env.QUANTSHIFT_COMMIT,
    distributedThreshold: env.PIPELINE_DISTRIBUTED_THRESHOLD,
    ...(env.STATE_TABLE === undefined
      ? {}
      : {
          validations: new DynamoStateStore(
            stateStoreDocumentClient(new DynamoDBClient({})),
            env.STATE_TABLE,
          ),
        }),
    marketData: async () => {
      if (env.ALPACA_SECRET_ARN === undefined)
        throw new ConfigError('pipeline prepare: ALPACA_SECRET_ARN is not set');
      const response = await new SecretsManagerClient({}).send(
        new GetSecretValueCommand({ SecretId: env.ALPACA_SECRET_ARN }),
      );
      const secret = alpacaSecretSchema.safeParse(JSON.parse(response.SecretString ?? '{}'));
      if (!secret.success) {
        throw new ConfigError('the Alpaca data secret must be JSON {"keyId": "...", "secret": "..."}');
      }
      return new AlpacaMarketData({ keyId: secret.data.keyId, secret: secret.data.secret });
    },
  });
  return steps;
}
