/**
 * The stream task's process (ECS Fargate, one task; `quantshift stream` runs the same locally
 * against an exported environment): builds the live context as the functions do, takes the lease on
 * the state table, runs the stream until SIGTERM (the scheduled scale-in after the close) or a fatal
 * error (refused keys, the lease lost), and exits non-zero on the latter so ECS shows it stopped.
 */
import { hostname } from 'node:os';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import * as z from 'zod';
import { keepAliveFetch } from '../adapters/alpaca/keep-alive-fetch.js';
import { stateStoreDocumentClient } from '../adapters/dynamodb/state-store.js';
import { DynamoStreamLease } from '../adapters/dynamodb/stream-lease.js';
import { ConfigError } from '../core/errors.js';
import { buildLiveContext } from '../runtime/equity-live.js';
import { alpacaKeys, liveEnvSchema, logger } from '../runtime/live.js';
import { hasMinuteBars, type StreamRun, startStream } from './run.js';

/** The live functions' environment plus the stream's own settings. */
export const streamEnvSchema = liveEnvSchema.extend({
  /** `iex` (free accounts) or `sip`. */
  STREAM_FEED: z.enum(['iex', 'sip']).default('iex'),
  /** Overrides the stream URL (the local fake server). */
  STREAM_URL: z.url().optional(),
  STREAM_STALE_AFTER_SECONDS: z.coerce.number().int().positive().default(120),
  /** Set by ECS: the task's metadata endpoint; its task id names the lease holder. */
  ECS_CONTAINER_METADATA_URI_V4: z.string().optional(),
});

export type StreamEnv = z.infer<typeof streamEnvSchema>;

export function parseStreamEnv(env: NodeJS.ProcessEnv = process.env): StreamEnv {
  const parsed = streamEnvSchema.safeParse(env);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`stream environment: ${detail}`, { cause: parsed.error });
  }
  return parsed.data;
}

/** Starts the stream from the environment. */
export async function startStreamFromEnv(
  env: StreamEnv,
  options: { readonly now?: () => number; readonly emit?: (line: string) => void } = {},
): Promise<StreamRun> {
  // The broker's sockets stay open between the 5 s reloads, so an exit finds them warm.
  const ctx = await buildLiveContext(env, { brokerFetch: keepAliveFetch() });
  const keys = await alpacaKeys(env);
  const dynamo = new DynamoDBClient(
    env.DYNAMODB_ENDPOINT === undefined ? {} : { endpoint: env.DYNAMODB_ENDPOINT },
  );
  const task = env.ECS_CONTAINER_METADATA_URI_V4?.split('/').pop();
  return startStream({
    ctx,
    url: env.STREAM_URL ?? `wss://stream.data.alpaca.markets/v2/${env.STREAM_FEED}`,
    ...keys,
    lease: new DynamoStreamLease(stateStoreDocumentClient(dynamo), env.STATE_TABLE),
    holder: `${task ?? hostname()}:${process.pid}`,
    ...(hasMinuteBars(ctx.marketData) ? { intraday: ctx.marketData } : {}),
    staleAfterMs: env.STREAM_STALE_AFTER_SECONDS * 1000,
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.emit === undefined ? {} : { emit: options.emit }),
  });
}

/** Runs until SIGTERM / SIGINT (exit 0) or a fatal stream error (exit 1). */
export async function runStreamProcess(): Promise<number> {
  const env = parseStreamEnv();
  const run = await startStreamFromEnv(env);
  const stopped = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      logger.info('stream stopping', { signal });
      void run.stop(signal).then(() => resolve(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  const failed = run.consumer.done().then(
    () => 0,
    (error: unknown) => {
      logger.error('stream stopped on a fatal error', { error: (error as Error).message });
      return 1;
    },
  );
  return Promise.race([stopped, failed]);
}
