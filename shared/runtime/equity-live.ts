/**
 * The equity bot's runtime (Alpaca, the NYSE calendar, the `quantshift-live` metrics), apart from
 * the bots' shared runtime (`live.ts`) so the crypto bot's bundles never carry the Alpaca SDK.
 */
import { AlpacaBroker } from '../adapters/alpaca/broker.js';
import { AlpacaMarketData } from '../adapters/alpaca/market-data.js';
import type { LiveContext } from '../live/context.js';
import type { LiveStep } from '../live/steps.js';
import {
  alpacaKeys,
  assertBotAssetClass,
  type LiveEnv,
  type LiveRuntime,
  liveCache,
  liveHandler,
  liveLog,
  liveNotifier,
  liveStore,
  metrics,
  parseLiveEnv,
  readLiveConfig,
  remember,
} from './live.js';

/** The equity bot: Alpaca, the NYSE calendar, the `quantshift-live` metrics. */
export const equityRuntime: LiveRuntime<LiveEnv> = {
  parseEnv: (env) => parseLiveEnv(env),
  buildContext: (env) => buildLiveContext(env),
  metrics,
};

/**
 * Builds the live context from the environment: adapters once per cold start. `brokerFetch` is the
 * broker's transport (default the global `fetch`; the stream task passes `keepAliveFetch()`).
 */
export async function buildLiveContext(
  env: LiveEnv,
  options: { readonly brokerFetch?: typeof fetch } = {},
): Promise<LiveContext> {
  const { config, configHash } = readLiveConfig(env.QUANTSHIFT_CONFIG, env.STAGE);
  assertBotAssetClass('equity', config, env.QUANTSHIFT_CONFIG);
  const keys = await alpacaKeys(env);
  remember(keys.keyId, keys.secret);
  const retry = { maxRetries: 4, baseDelayMs: 250, maxDelayMs: 5_000 };
  const rateLimit = { maxRequests: env.BROKER_RATE_LIMIT, intervalMs: 60_000 };
  const cache = await liveCache(env, `qs:${env.STAGE}:`);
  const broker = new AlpacaBroker({
    ...keys,
    ...(env.ALPACA_BASE_URL === undefined
      ? { paper: env.STAGE === 'paper' }
      : { baseUrl: env.ALPACA_BASE_URL }),
    retry,
    rateLimit,
    ...(options.brokerFetch === undefined ? {} : { fetchApi: options.brokerFetch }),
  });
  return {
    stage: env.STAGE,
    brokerRateLimit: env.BROKER_RATE_LIMIT,
    config,
    configHash,
    gitCommit: env.QUANTSHIFT_COMMIT,
    broker,
    now: async () => (await broker.getClock()).timestamp,
    marketData: new AlpacaMarketData({
      ...keys,
      ...(env.ALPACA_BASE_URL === undefined ? {} : { baseUrl: env.ALPACA_BASE_URL }),
      retry,
      rateLimit,
    }),
    store: liveStore(env),
    ...(cache === undefined ? {} : { cache }),
    notifier: liveNotifier(env),
    log: liveLog,
  };
}

/** A live Lambda handler of the equity bot (`liveHandler` on its runtime). */
export function equityLiveHandler<R>(
  step: LiveStep,
  run: (ctx: LiveContext, scheduledTime: string) => Promise<R>,
) {
  return liveHandler(step, run, equityRuntime);
}
