/**
 * What every deployed pipeline function shares: its environment and the data bucket. A handler
 * (`functions/pipeline-<step>/handler.ts`) builds its one step with {@link pipelineHandler} from
 * these and from the port modules of the steps that need more: `pipeline-market-data.ts`
 * (prepare: Secrets Manager and Alpaca), `pipeline-notifier.ts` (notify: SNS) and
 * `pipeline-validations.ts` (aggregate: the DynamoDB state table). Kept apart, so that each
 * function's bundle carries only the AWS clients its step uses.
 */
import { S3Client } from '@aws-sdk/client-s3';
import * as z from 'zod';
import { S3ObjectStore } from '../adapters/aws/s3-store.js';
import { ConfigError } from '../core/errors.js';
import type { ObjectStore } from '../core/ports/object-store.js';

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

export type PipelineEnv = z.infer<typeof pipelineEnvSchema>;

/** The function's environment, checked; a bad one is a `ConfigError` naming every bad variable. */
export function parsePipelineEnv(env: NodeJS.ProcessEnv = process.env): PipelineEnv {
  const parsed = pipelineEnvSchema.safeParse(env);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`pipeline function environment: ${detail}`, { cause: parsed.error });
  }
  return parsed.data;
}

/** The data bucket (`DATA_BUCKET`) as the steps' object store. */
export function pipelineStore(env: PipelineEnv): ObjectStore {
  return new S3ObjectStore(new S3Client({}), env.DATA_BUCKET);
}

/**
 * A pipeline function's handler: builds its step from the environment on the first invocation
 * (once per cold start: importing the bundle builds nothing) and runs it on every event. A failed
 * build (a bad environment) is not kept: the next invocation tries again.
 */
export function pipelineHandler<I, O>(
  build: (env: PipelineEnv) => (input: I) => Promise<O>,
): (input: I) => Promise<O> {
  let step: ((input: I) => Promise<O>) | undefined;
  return async (input) => {
    step ??= build(parsePipelineEnv());
    return step(input);
  };
}
