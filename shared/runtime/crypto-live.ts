/**
 * The crypto bot's runtime: what its Lambda handlers share. The same live steps and the same
 * middy chain as the equity bot (`live.ts`), with Coinbase Advanced Trade as broker and market
 * data, the 24/7 UTC calendar (sessions are UTC days, every day open), its own table, its own
 * metrics `service` (`quantshift-crypto`) and the dry run of its paper stage.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import * as z from 'zod';
import { type CdpKey, cdpKeySchema } from '../adapters/coinbase/auth.js';
import { CoinbaseBroker } from '../adapters/coinbase/broker.js';
import { CoinbaseMarketData } from '../adapters/coinbase/market-data.js';
import { ConfigError } from '../core/errors.js';
import { cryptoCalendar } from '../core/market/crypto-calendar.js';
import type { LiveContext } from '../live/context.js';
import { DryRunBroker } from '../live/dry-run.js';
import { type FundingResult, fundingMonitor } from '../live/funding-monitor.js';
import type { LiveStep } from '../live/steps.js';
import { CRYPTO_METRICS_SERVICE, FUNDING_DIMENSION, fundingMetricPoints } from './crypto-metrics.js';
import {
  assertBotAssetClass,
  type LiveRuntime,
  liveCache,
  liveEnvSchema,
  liveEventHandler,
  liveHandler,
  liveLog,
  liveNotifier,
  liveStore,
  logger,
  readLiveConfig,
  remember,
} from './live.js';
import { LIVE_METRICS_NAMESPACE } from './live-metrics.js';

/** The crypto bot's strategy config when `QUANTSHIFT_CONFIG` is not set. */
export const DEFAULT_CRYPTO_CONFIG = 'config/crypto-strategy.yaml';

const flag = (name: string) =>
  z.enum(['true', 'false'], { error: `${name} must be "true" or "false"` }).transform((v) => v === 'true');

/** Whether a base URL is the local Coinbase-compatible server's (a loopback host: 127.0.0.1, ::1, localhost). */
export function isLoopback(url: string | undefined): boolean {
  if (url === undefined) return false;
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** Environment of the crypto functions (from the crypto stack, or set by a local run). */
export const cryptoLiveEnvSchema = z
  .object({
    STAGE: z.enum(['paper', 'live']),
    STATE_TABLE: z.string().min(1),
    IDEMPOTENCY_TABLE: z.string().min(1),
    QUANTSHIFT_CONFIG: z.string().min(1).default(DEFAULT_CRYPTO_CONFIG),
    QUANTSHIFT_COMMIT: z.string().min(1).default('unknown'),
    TOPIC_ARN: z.string().startsWith('arn:').optional(),
    DASHBOARD_URL: z.url().optional(),
    /** Secrets Manager: the CDP key as JSON `{"name": "organizations/.../apiKeys/...", "privateKey": "..."}`. */
    COINBASE_SECRET_ARN: z.string().optional(),
    UPSTASH_SECRET_ARN: z.string().optional(),
    /**
     * `true`: the dry run (every intent recorded with the best bid/ask, no order sent). The paper
     * stage is always a dry run (Coinbase has no paper trading): `false` there is refused.
     */
    DRY_RUN: flag('DRY_RUN').default(true),
    /** The kill-switch function only: overrides the config's `live.killSwitch.flatten`. */
    KILL_SWITCH_FLATTEN: liveEnvSchema.shape.KILL_SWITCH_FLATTEN,
    /**
     * `true`: a local rehearsal (`quantshift replay`) against the local Coinbase-compatible server
     * on a loopback address; only then may the paper stage send orders (DRY_RUN=false). Never set
     * by the stack.
     */
    LOCAL_REHEARSAL: flag('LOCAL_REHEARSAL').default(false),
    /** Local runs only: the key itself and the local servers' URLs. */
    COINBASE_KEY_NAME: z.string().optional(),
    COINBASE_PRIVATE_KEY: z.string().optional(),
    COINBASE_BASE_URL: z.url().optional(),
    UPSTASH_REDIS_REST_URL: z.url().optional(),
    UPSTASH_REDIS_REST_TOKEN: z.string().optional(),
    DYNAMODB_ENDPOINT: z.url().optional(),
  })
  .superRefine((env, ctx) => {
    // The one exception: a rehearsal against the local Coinbase-compatible server on this machine
    // (`quantshift replay`: LOCAL_REHEARSAL=true), whose orders go to a loopback address only.
    const rehearsal = env.LOCAL_REHEARSAL && isLoopback(env.COINBASE_BASE_URL);
    if (env.LOCAL_REHEARSAL && !rehearsal) {
      ctx.addIssue({
        code: 'custom',
        path: ['LOCAL_REHEARSAL'],
        message:
          'a local rehearsal needs COINBASE_BASE_URL on a loopback address (the local Coinbase server)',
      });
    }
    if (env.STAGE === 'paper' && !env.DRY_RUN && !rehearsal) {
      ctx.addIssue({
        code: 'custom',
        path: ['DRY_RUN'],
        message:
          'the paper stage of the crypto bot is a dry run (Coinbase has no paper trading): DRY_RUN=false is refused (except in a local rehearsal: LOCAL_REHEARSAL=true against the local Coinbase server)',
      });
    }
  });

export type CryptoLiveEnv = z.infer<typeof cryptoLiveEnvSchema>;

export function parseCryptoLiveEnv(env: NodeJS.ProcessEnv = process.env): CryptoLiveEnv {
  const parsed = cryptoLiveEnvSchema.safeParse(env);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`crypto function environment: ${detail}`, { cause: parsed.error });
  }
  return parsed.data;
}

/** The CDP key: from the local environment, else from the stage's secret. Never logged. */
export async function coinbaseKey(env: CryptoLiveEnv): Promise<CdpKey> {
  if (env.COINBASE_KEY_NAME !== undefined && env.COINBASE_PRIVATE_KEY !== undefined) {
    return { name: env.COINBASE_KEY_NAME, privateKey: env.COINBASE_PRIVATE_KEY };
  }
  if (env.COINBASE_SECRET_ARN === undefined)
    throw new ConfigError('crypto functions: COINBASE_SECRET_ARN is not set');
  const parsed = cdpKeySchema.safeParse(
    await getSecret(env.COINBASE_SECRET_ARN, { transform: 'json', maxAge: 300 }),
  );
  if (!parsed.success) {
    throw new ConfigError(
      'the Coinbase secret must be JSON {"name": "organizations/{org}/apiKeys/{id}", "privateKey": "..."}',
    );
  }
  return parsed.data;
}

/** Builds the crypto bot's live context: adapters once per cold start. */
export async function buildCryptoLiveContext(env: CryptoLiveEnv): Promise<LiveContext> {
  const { config, configHash } = readLiveConfig(env.QUANTSHIFT_CONFIG, env.STAGE);
  assertBotAssetClass('crypto', config, env.QUANTSHIFT_CONFIG);
  const key = await coinbaseKey(env);
  remember(key.privateKey);
  const adapter = {
    key,
    ...(env.COINBASE_BASE_URL === undefined ? {} : { baseUrl: env.COINBASE_BASE_URL }),
    retry: { maxRetries: 4, baseDelayMs: 250, maxDelayMs: 5_000 },
  };
  const marketData = new CoinbaseMarketData(adapter);
  const coinbase = new CoinbaseBroker(adapter);
  const store = liveStore(env);
  // The dry run sends nothing: its orders fill in a virtual account kept in the bot's table.
  const dryRun = env.DRY_RUN
    ? new DryRunBroker({
        inner: coinbase,
        quotes: marketData,
        bars: marketData,
        products: coinbase,
        store,
        costs: config.costs,
        clockSymbol: config.watchlist[0] as string,
      })
    : undefined;
  const broker = dryRun ?? coinbase;
  const cache = await liveCache(env, `qs:crypto:${env.STAGE}:`);
  return {
    stage: env.STAGE,
    config,
    configHash,
    gitCommit: env.QUANTSHIFT_COMMIT,
    broker,
    marketData,
    store,
    ...(cache === undefined ? {} : { cache }),
    notifier: liveNotifier(env),
    log: liveLog,
    calendar: cryptoCalendar,
    // The clock port: the exchange's clock (the local server's market clock in a rehearsal), so a
    // late retry of the 00:15 run is checked against the 01:00 UTC cutoff at the time it runs.
    now: () => coinbase.getServerTime(),
    // The dry run's decisions read the book through its broker: the virtual fill is at the book recorded.
    crypto: {
      dryRun: env.DRY_RUN,
      quotes: dryRun ?? marketData,
      funding: coinbase,
      records: store,
      products: coinbase,
    },
  };
}

/** The crypto bot's metrics: the same namespace, its own `service` dimension. */
export const cryptoMetrics = new Metrics({
  namespace: LIVE_METRICS_NAMESPACE,
  serviceName: CRYPTO_METRICS_SERVICE,
});

/** The crypto bot: Coinbase, the 24/7 UTC calendar, the `quantshift-crypto` metrics. */
export const cryptoRuntime: LiveRuntime<CryptoLiveEnv> = {
  parseEnv: (env) => parseCryptoLiveEnv(env),
  buildContext: (env) => buildCryptoLiveContext(env),
  metrics: cryptoMetrics,
};

/** A crypto Lambda handler of a live step (the same step code as the equity bot's). */
export function cryptoLiveHandler<R>(
  step: LiveStep,
  run: (ctx: LiveContext, scheduledTime: string) => Promise<R>,
) {
  return liveHandler(step, run, cryptoRuntime);
}

/** The funding monitor's schedule payload: as the live steps', keyed by step and scheduled time. */
export const fundingEventSchema = z
  .object({ step: z.literal('funding-rates'), scheduledTime: z.iso.datetime({ offset: true }) })
  .strict();

/** The funding-rate monitor's Lambda handler: records, alerts and emits the rate per underlying. */
export function cryptoFundingHandler() {
  return liveEventHandler<z.infer<typeof fundingEventSchema>, FundingResult, CryptoLiveEnv>({
    name: 'funding-rates',
    schema: fundingEventSchema,
    idempotencyKey: '[step, scheduledTime]',
    requireIdempotencyKey: true,
    runtime: cryptoRuntime,
    run: async (event, context) => {
      const ctx = await context();
      logger.appendKeys({ step: event.step, scheduledTime: event.scheduledTime });
      const result = await fundingMonitor(ctx, event.scheduledTime);
      const { counts, rates } = fundingMetricPoints(result);
      for (const point of counts) cryptoMetrics.addMetric(point.name, point.unit, point.value);
      for (const { underlying, point } of rates) {
        // One EMF document per underlying: its own dimension, the service and stage ones kept.
        const single = cryptoMetrics.singleMetric();
        single.addDimension(FUNDING_DIMENSION, underlying);
        single.addMetric(point.name, MetricUnit.NoUnit, point.value);
      }
      logger.info('step succeeded', { step: event.step });
      return result;
    },
  });
}
