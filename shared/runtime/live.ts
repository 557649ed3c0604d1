import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { IdempotencyConfig } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { makeHandlerIdempotent } from '@aws-lambda-powertools/idempotency/middleware';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { GetParameterError } from '@aws-lambda-powertools/parameters/errors';
import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SNSClient } from '@aws-sdk/client-sns';
import middy from '@middy/core';
import { Redis } from '@upstash/redis';
import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { SnsNotifier } from '../adapters/aws/sns-notifier.js';
import { DynamoStateStore, stateStoreDocumentClient } from '../adapters/dynamodb/state-store.js';
import { ListNotifier } from '../adapters/local/list-notifier.js';
import { UpstashCache } from '../adapters/upstash/cache.js';
import { parseConfig } from '../core/config/schema.js';
import { ConfigError } from '../core/errors.js';
import { assertLiveConfig } from '../core/live/orders.js';
import { type AssetClass, assertAssetClass } from '../core/market/asset-class.js';
import type { LiveContext } from '../live/context.js';
import { LIVE_STEPS, type LiveStep } from '../live/steps.js';
import {
  emitSleeveMetrics,
  LIVE_METRICS,
  LIVE_METRICS_NAMESPACE,
  LIVE_METRICS_SERVICE,
  stepMetrics,
  stepSleeveFigures,
} from './live-metrics.js';

export { LIVE_STEPS, type LiveStep };

/**
 * The schedule's payload: the step and `<aws.scheduler.scheduled-time>` (replay injects the same).
 * Together they are the idempotency key: a retried or duplicated invocation of the same scheduled
 * run returns the first result; the next scheduled run is a new key.
 */
export const liveEventSchema = z
  .object({
    step: z.enum(LIVE_STEPS),
    scheduledTime: z.iso.datetime({ offset: true }),
  })
  .strict();

export type LiveEvent = z.infer<typeof liveEventSchema>;

/** Environment of the live functions (from the stack, or printed by `quantshift local up`). */
export const liveEnvSchema = z.object({
  STAGE: z.enum(['paper', 'live']),
  STATE_TABLE: z.string().min(1),
  IDEMPOTENCY_TABLE: z.string().min(1),
  QUANTSHIFT_CONFIG: z.string().min(1).default('config/equity-strategy.yaml'),
  QUANTSHIFT_COMMIT: z.string().min(1).default('unknown'),
  TOPIC_ARN: z.string().startsWith('arn:').optional(),
  /** The stage's CloudWatch dashboard, linked from every alert. */
  DASHBOARD_URL: z.url().optional(),
  /** Secrets Manager: `{"keyId","secret"}` for Alpaca, `{"url","token"}` for Upstash. */
  ALPACA_SECRET_ARN: z.string().optional(),
  UPSTASH_SECRET_ARN: z.string().optional(),
  /** Local stack only: the keys themselves and the local servers' URLs. */
  ALPACA_KEY_ID: z.string().optional(),
  ALPACA_SECRET_KEY: z.string().optional(),
  ALPACA_BASE_URL: z.url().optional(),
  UPSTASH_REDIS_REST_URL: z.url().optional(),
  UPSTASH_REDIS_REST_TOKEN: z.string().optional(),
  DYNAMODB_ENDPOINT: z.url().optional(),
  /** The kill-switch function only: overrides the config's `live.killSwitch.flatten`. */
  KILL_SWITCH_FLATTEN: z
    .enum(['true', 'false'], { error: 'KILL_SWITCH_FLATTEN must be "true" or "false", or unset' })
    .optional()
    .transform((v) => (v === undefined ? undefined : v === 'true')),
  /** Broker requests a minute, shared through the cache's limiter (Alpaca allows 200). */
  BROKER_RATE_LIMIT: z.coerce.number().int().positive().default(200),
});

export type LiveEnv = z.infer<typeof liveEnvSchema>;

const alpacaSecretSchema = z.object({ keyId: z.string().min(1), secret: z.string().min(1) });
const upstashSecretSchema = z.object({ url: z.url(), token: z.string().min(1) });

/** Secret values this process has seen: every log line is scrubbed of them. */
const secrets = new Set<string>();
export const remember = (...values: (string | undefined)[]) => {
  for (const v of values) if (v !== undefined && v.length >= 4) secrets.add(v);
};
function redact(_key: string, value: unknown): unknown {
  if (typeof value !== 'string' || secrets.size === 0) return value;
  let out = value;
  for (const secret of secrets) out = out.split(secret).join('[redacted]');
  return out;
}

export const logger = new Logger({ serviceName: 'quantshift-live', jsonReplacerFn: redact });
export const metrics = new Metrics({
  namespace: LIVE_METRICS_NAMESPACE,
  serviceName: LIVE_METRICS_SERVICE,
});
/**
 * The handlers' X-Ray tracer, loaded when the first handler chain is built (a Lambda's first
 * invocation), not at import: loading `aws-xray-sdk-core` enables an async hook (cls-hooked, with a
 * destroy hook) that makes every promise of the process many times dearer, and the processes that
 * import this module without running a handler (the stream task, the CLI) do not trace.
 */
let tracer: Promise<import('@aws-lambda-powertools/tracer').Tracer> | undefined;
function liveTracer() {
  tracer ??= import('@aws-lambda-powertools/tracer').then(
    ({ Tracer }) => new Tracer({ serviceName: 'quantshift-live' }),
  );
  return tracer;
}

export function parseLiveEnv(env: NodeJS.ProcessEnv = process.env): LiveEnv {
  const parsed = liveEnvSchema.safeParse(env);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`live function environment: ${detail}`, { cause: parsed.error });
  }
  return parsed.data;
}

export async function alpacaKeys(env: LiveEnv) {
  if (env.ALPACA_KEY_ID !== undefined && env.ALPACA_SECRET_KEY !== undefined) {
    return { keyId: env.ALPACA_KEY_ID, secret: env.ALPACA_SECRET_KEY };
  }
  if (env.ALPACA_SECRET_ARN === undefined)
    throw new ConfigError('live functions: ALPACA_SECRET_ARN is not set');
  const parsed = alpacaSecretSchema.safeParse(
    await getSecret(env.ALPACA_SECRET_ARN, { transform: 'json', maxAge: 300 }),
  );
  if (!parsed.success)
    throw new ConfigError('the Alpaca secret must be JSON {"keyId": "...", "secret": "..."}');
  return parsed.data;
}

async function upstash(
  env: Pick<LiveEnv, 'UPSTASH_REDIS_REST_URL' | 'UPSTASH_REDIS_REST_TOKEN' | 'UPSTASH_SECRET_ARN'>,
) {
  if (env.UPSTASH_REDIS_REST_URL !== undefined && env.UPSTASH_REDIS_REST_TOKEN !== undefined) {
    return { url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN };
  }
  if (env.UPSTASH_SECRET_ARN === undefined) return undefined;
  let value: unknown;
  try {
    value = await getSecret(env.UPSTASH_SECRET_ARN, { transform: 'json', maxAge: 300 });
  } catch (error) {
    // The stack creates the secret empty. Left empty, the functions run without Redis: the cache
    // is an accelerator (conditional writes keep every order exactly once; the adapters keep
    // their own rate limit). Any other failure stops the step.
    if (
      error instanceof GetParameterError &&
      (error.cause as Error | undefined)?.name === 'ResourceNotFoundException'
    ) {
      logger.warn(
        'the Upstash secret has no value: running without the cache, the lock and the shared rate limiter',
      );
      return undefined;
    }
    throw error;
  }
  const parsed = upstashSecretSchema.safeParse(value);
  if (!parsed.success)
    throw new ConfigError('the Upstash secret must be JSON {"url": "...", "token": "..."}');
  return parsed.data;
}

/** The bot's strategy config, from the bundle (`LAMBDA_TASK_ROOT`) or the working folder. */
export function readLiveConfig(file: string, stage: 'paper' | 'live') {
  const path = isAbsolute(file) ? file : join(process.env.LAMBDA_TASK_ROOT ?? process.cwd(), file);
  const text = readFileSync(path, 'utf8');
  const config = parseConfig(text, file);
  assertLiveConfig(config, stage);
  return { config, configHash: createHash('sha256').update(text).digest('hex') };
}

/**
 * Refuses a config whose watchlist holds a symbol of the other bot's asset class, before any
 * adapter is built: `CryptoSymbolRefusedError` for the equity bot, `EquitySymbolRefusedError` for
 * the crypto bot (a config of `assetClass: crypto` reaching the equity functions, or the reverse).
 */
export function assertBotAssetClass(
  assetClass: AssetClass,
  config: { readonly watchlist: readonly string[] },
  file: string,
): void {
  config.watchlist.forEach((symbol, i) => {
    assertAssetClass(assetClass, symbol, `${file}: watchlist.${i} (the ${assetClass} bot)`);
  });
}

/** The Upstash cache of a bot, under its own key prefix; undefined without an endpoint. */
export async function liveCache(
  env: Pick<LiveEnv, 'UPSTASH_REDIS_REST_URL' | 'UPSTASH_REDIS_REST_TOKEN' | 'UPSTASH_SECRET_ARN'>,
  prefix: string,
): Promise<UpstashCache | undefined> {
  const redis = await upstash(env);
  remember(redis?.token);
  if (redis === undefined) return undefined;
  return new UpstashCache({
    // An accelerator must not stall a step: one quick retry, then the caller degrades.
    redis: new Redis({ url: redis.url, token: redis.token, retry: { retries: 1, backoff: () => 100 } }),
    prefix,
    onCorrupt: (error) => logger.warn('corrupt cache entry read as a miss', { error: error.message }),
    onUnavailable: (error) => logger.warn('cache unavailable; degraded to a miss', { error: error.message }),
  });
}

/** The alert topic's notifier, or the log when no topic is set (local runs). */
export function liveNotifier(env: Pick<LiveEnv, 'TOPIC_ARN' | 'STAGE' | 'DASHBOARD_URL'>) {
  return env.TOPIC_ARN === undefined
    ? new ListNotifier((line) => logger.info(line))
    : new SnsNotifier(new SNSClient({}), env.TOPIC_ARN, {
        stage: env.STAGE,
        ...(env.DASHBOARD_URL === undefined ? {} : { dashboardUrl: env.DASHBOARD_URL }),
      });
}

/** The state store on the bot's table (local DynamoDB when `DYNAMODB_ENDPOINT` is set). */
export function liveStore(env: Pick<LiveEnv, 'STATE_TABLE' | 'DYNAMODB_ENDPOINT'>): DynamoStateStore {
  const dynamo = new DynamoDBClient(
    env.DYNAMODB_ENDPOINT === undefined ? {} : { endpoint: env.DYNAMODB_ENDPOINT },
  );
  return new DynamoStateStore(stateStoreDocumentClient(dynamo), env.STATE_TABLE);
}

/** Structured logging through the handlers' Powertools Logger (secrets redacted). */
export const liveLog: LiveContext['log'] = {
  info: (message, fields) => logger.info(message, fields ?? {}),
  warn: (message, fields) => logger.warn(message, fields ?? {}),
  error: (message, fields) => logger.error(message, fields ?? {}),
};

/** What every bot's environment has: the stage and the tables (local DynamoDB optional). */
export interface BaseLiveEnv {
  readonly STAGE: 'paper' | 'live';
  readonly IDEMPOTENCY_TABLE: string;
  readonly DYNAMODB_ENDPOINT?: string | undefined;
}

/** Which bot a handler runs: how it reads its environment, builds its context and emits its metrics. */
export interface LiveRuntime<V extends BaseLiveEnv> {
  readonly parseEnv: (env: NodeJS.ProcessEnv) => V;
  readonly buildContext: (env: V) => Promise<LiveContext>;
  /** The bot's Powertools Metrics (its own `service` dimension, so the bots' figures never mix). */
  readonly metrics: Metrics;
}

/**
 * A live Lambda handler: parses the event with zod, builds the context once per cold start, runs
 * one step, emits the heartbeat and the step's business metrics. The middy chain (Powertools
 * Logger, Metrics, Tracer, Idempotency keyed by step and scheduled time) is the only
 * cross-cutting code.
 */
export function liveHandler<R, V extends BaseLiveEnv = LiveEnv>(
  step: LiveStep,
  run: (ctx: LiveContext, scheduledTime: string) => Promise<R>,
  runtime: LiveRuntime<V>,
) {
  const metrics = runtime.metrics;
  return liveEventHandler<LiveEvent, R, V>({
    name: step,
    schema: liveEventSchema,
    idempotencyKey: '[step, scheduledTime]',
    requireIdempotencyKey: true,
    runtime,
    run: async (event, context) => {
      if (event.step !== step) throw new ConfigError(`${step}: the event is for ${event.step}`);
      const ctx = await context();
      logger.appendKeys({ step, scheduledTime: event.scheduledTime });
      const result = await run(ctx, event.scheduledTime);
      if (step === 'market-open-check') metrics.addMetric(LIVE_METRICS.heartbeat, MetricUnit.Count, 1);
      for (const point of stepMetrics(step, result)) metrics.addMetric(point.name, point.unit, point.value);
      emitSleeveMetrics(metrics, stepSleeveFigures(step, result));
      logger.info('step succeeded', { step });
      return result;
    },
  });
}

/** A CloudWatch alarm time: ISO 8601 with `Z` or an offset written `+0000` or `+00:00`; read as ISO UTC. */
const alarmTimeSchema = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$/, 'not an ISO 8601 time')
  .refine((s) => Number.isFinite(Date.parse(s)), 'not a real time')
  .transform((s) => new Date(Date.parse(s)).toISOString());

const alarmStateSchema = z.object({
  value: z.enum(['OK', 'ALARM', 'INSUFFICIENT_DATA']),
  reason: z.string(),
  timestamp: alarmTimeSchema,
  reasonData: z.string().optional(),
  actionsSuppressedBy: z.string().optional(),
  actionsSuppressedReason: z.string().optional(),
});

/**
 * The event a CloudWatch alarm sends to a Lambda function it names as an alarm action (metric and
 * composite alarms alike; `configuration` differs between them and is kept as it is). Times are
 * normalized to ISO UTC (`2023-08-04T12:36:15.490+0000` becomes `2023-08-04T12:36:15.490Z`).
 */
export const cloudWatchAlarmEventSchema = z.object({
  source: z.literal('aws.cloudwatch'),
  alarmArn: z.string().startsWith('arn:'),
  accountId: z.string().min(1),
  time: alarmTimeSchema,
  region: z.string().min(1),
  alarmData: z.object({
    alarmName: z.string().min(1),
    state: alarmStateSchema,
    previousState: alarmStateSchema,
    configuration: z.record(z.string(), z.unknown()),
  }),
});

export type CloudWatchAlarmEvent = z.infer<typeof cloudWatchAlarmEventSchema>;

/** What {@link liveEventHandler} needs: the event's schema, its idempotency key and the work. */
export interface LiveEventHandlerOptions<E, R, V extends BaseLiveEnv = LiveEnv> {
  /** The function's name in errors and metrics (`<name>.success`), e.g. `kill-switch`. */
  readonly name: string;
  readonly schema: z.ZodType<E>;
  /** JMESPath over the raw event giving the idempotency key, e.g. `[alarmArn, alarmData.state.timestamp]`. */
  readonly idempotencyKey: string;
  /**
   * Whether an event without the key fails before the work (the schedule's payload always has
   * it); otherwise it goes on to the schema, which names what is wrong.
   * @default false
   */
  readonly requireIdempotencyKey?: boolean;
  /** The work: `context()` builds the live context (once per cold start) when the event needs it. */
  readonly run: (event: E, context: () => Promise<LiveContext>, env: V) => Promise<R>;
  /** The bot (`equityRuntime` in `equity-live.ts`, `cryptoRuntime` in `crypto-live.ts`). */
  readonly runtime: LiveRuntime<V>;
}

/**
 * A live Lambda handler for an event other than the schedule's (the kill switch's CloudWatch alarm
 * event): the same middy chain as {@link liveHandler} (Powertools Logger with secret redaction,
 * Metrics, Tracer, Idempotency keyed by `idempotencyKey`, a JMESPath over the event), the event
 * parsed with `schema` first, and the live context built once per cold start, but only when `run`
 * asks for it (an event it ignores needs no broker and no secrets).
 */
export function liveEventHandler<E, R, V extends BaseLiveEnv = LiveEnv>(
  options: LiveEventHandlerOptions<E, R, V>,
): (event: unknown, context: Context) => Promise<R> {
  const runtime = options.runtime;
  // One chain per environment: in Lambda that is one per cold start; a local replay that starts a
  // new stack (new endpoints) gets a new chain instead of talking to the old one.
  const chains = new Map<string, Promise<(event: unknown, context: Context) => Promise<R>>>();
  return async (event: unknown, lambdaContext: Context): Promise<R> => {
    const env = runtime.parseEnv(process.env);
    const fingerprint = JSON.stringify(env);
    let chain = chains.get(fingerprint);
    if (chain === undefined) {
      chain = buildEventChain(options, runtime, env);
      chains.set(fingerprint, chain);
      // A chain that could not be built is built again by the next invocation.
      chain.catch(() => chains.delete(fingerprint));
    }
    return (await chain)(event, lambdaContext);
  };
}

const stageDimensions = new WeakMap<Metrics, string>();

async function buildEventChain<E, R, V extends BaseLiveEnv>(
  options: LiveEventHandlerOptions<E, R, V>,
  runtime: LiveRuntime<V>,
  env: V,
): Promise<(event: unknown, context: Context) => Promise<R>> {
  const { name, schema, idempotencyKey, run } = options;
  const { metrics } = runtime;
  // Paper and live may share an account: every metric says which stage it is from.
  if (stageDimensions.get(metrics) !== env.STAGE) {
    metrics.setDefaultDimensions({ stage: env.STAGE });
    stageDimensions.set(metrics, env.STAGE);
  }
  let context: Promise<LiveContext> | undefined;
  const getContext = () => {
    context ??= runtime.buildContext(env);
    context.catch(() => {
      context = undefined;
    });
    return context;
  };
  const parse = (raw: unknown): E => {
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      throw new ConfigError(
        `${name}: bad event: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'event'}: ${i.message}`).join('; ')}`,
        { cause: parsed.error },
      );
    }
    return parsed.data;
  };
  const core = async (raw: unknown, lambdaContext: Context): Promise<R> => {
    const event = parse(raw);
    logger.appendKeys({ function: name, requestId: lambdaContext.awsRequestId });
    const result = await run(event, getContext, env);
    metrics.addMetric(LIVE_METRICS.stepSuccess(name), MetricUnit.Count, 1);
    return JSON.parse(JSON.stringify(result)) as R;
  };
  const chain = middy(core)
    .use(injectLambdaContext(logger))
    .use(captureLambdaHandler(await liveTracer()))
    .use(logMetrics(metrics, { captureColdStartMetric: true }))
    // The event is validated BEFORE the idempotency layer: a bad event fails naming its field (not
    // as a persistence error), and an event with extra fields is refused, never answered from the
    // record of the finished run it shares a key with.
    .use({
      before: (request) => {
        parse(request.event);
      },
    })
    .use(
      makeHandlerIdempotent({
        persistenceStore: new DynamoDBPersistenceLayer({
          tableName: env.IDEMPOTENCY_TABLE,
          ...(env.DYNAMODB_ENDPOINT === undefined
            ? {}
            : { clientConfig: { endpoint: env.DYNAMODB_ENDPOINT } }),
        }),
        config: new IdempotencyConfig({
          eventKeyJmesPath: idempotencyKey,
          throwOnNoIdempotencyKey: options.requireIdempotencyKey ?? false,
        }),
      }),
    ) as unknown as (event: unknown, context: Context) => Promise<R>;
  return async (event, lambdaContext) => {
    try {
      return await chain(event, lambdaContext);
    } catch (error) {
      // Wrappers (Powertools' idempotency errors, the state store's) name the layer; the root
      // cause names what actually failed (a refused connection, a throttled table).
      logger.error('step failed', {
        function: name,
        error: describeError(error),
        rootCause: describeError(rootCause(error)),
      });
      throw error;
    }
  };
}

/** The innermost `cause` of an error chain (the error itself when it has none). */
export function rootCause(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < 16 && current instanceof Error && current.cause !== undefined; depth++)
    current = current.cause;
  return current;
}

function describeError(error: unknown): { name: string; message: string; code?: string } {
  if (!(error instanceof Error)) return { name: typeof error, message: String(error) };
  const code = (error as { code?: unknown }).code;
  return {
    name: error.name,
    message: error.message,
    ...(typeof code === 'string' ? { code } : {}),
  };
}
