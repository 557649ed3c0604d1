import { readFileSync } from 'node:fs';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { configProducts, parseConfig } from '../../core/config/schema.js';
import { InvalidParameterError } from '../../core/errors.js';
import { createStateTable } from '../dynamodb/state-store.js';
import { type LocalAlpaca, startLocalAlpaca } from './alpaca-server.js';
import {
  generateTestCdpKey,
  type LocalCoinbase,
  localProducts,
  startLocalCoinbase,
} from './coinbase-server.js';
import { startLocalDynamo } from './dynamodb.js';
import type { ExecutionRealism } from './execution-realism.js';
import { type FaultLink, startFaultLink } from './fault-link.js';
import type { CorporateAction } from './paper-broker.js';
import { startRedisServer } from './redis-server.js';
import { startUpstashBridge } from './upstash-bridge.js';

/** Fake credentials of the local stack: never real keys. */
export const LOCAL_KEYS = { keyId: 'local-paper-key', secret: 'local-paper-secret-0123456789' } as const;
export const LOCAL_UPSTASH_TOKEN = 'local-upstash-token-0123456789';

/** The live functions' local stack: paper broker over HTTP, dynalite, redis-server behind the Upstash bridge. */
export interface LocalLiveStack {
  readonly alpaca: LocalAlpaca;
  /** The local DynamoDB's document client (the state a rehearsal keeps is read through it). */
  readonly dynamo: DynamoDBDocumentClient;
  /** The environment to run the live functions against this stack. */
  readonly env: Readonly<Record<string, string>>;
  /**
   * With `faultLinks`: the links the functions reach DynamoDB and the Upstash bridge through, to
   * cut and restore them mid-step (an outage of either, then its return with the data intact).
   */
  readonly links?: { readonly dynamo: FaultLink; readonly cache: FaultLink | undefined };
  close(): Promise<void>;
}

/**
 * Starts the whole local stack. `startTime` is the paper broker's simulated clock (replay moves it).
 * Redis is optional (`withCache: false`): the functions work without their accelerator. The paper
 * broker fills with the config's `costs.slippageBps`, as the backtest does, so that a replay of the
 * config trades what its backtest trades.
 */
export async function startLocalLiveStack(options: {
  readonly dataDir: string;
  readonly startTime: string;
  readonly configPath: string;
  readonly withCache?: boolean;
  /** Route DynamoDB and the cache through {@link FaultLink}s (`links`), for outage rehearsals. */
  readonly faultLinks?: boolean;
  /** Rehearsal realism of the paper broker (off by default): see `execution-realism.ts`. */
  readonly realism?: ExecutionRealism;
  /** Partial fills at the open: the fraction of the leaves filled first (off by default). */
  readonly partialFill?: number;
  /** Splits and dividends the paper broker applies at the open of their date (none by default). */
  readonly corporateActions?: readonly CorporateAction[];
}): Promise<LocalLiveStack> {
  const broker = await startLocalBroker(options);
  const state = await startLocalStateAndCache(options);
  const env: Record<string, string> = { ...state.env, ...broker.env };
  const { alpaca } = broker;
  return {
    alpaca,
    dynamo: state.dynamo,
    env,
    ...(state.links === undefined ? {} : { links: state.links }),
    async close() {
      await alpaca.close();
      await state.close();
    },
  };
}

/**
 * The broker half of a local equity stack: the local Alpaca server with the config's cash and
 * slippage; `env` names it (and the config) for the functions.
 */
export async function startLocalBroker(options: {
  readonly dataDir: string;
  readonly startTime: string;
  readonly configPath: string;
  readonly realism?: ExecutionRealism;
  readonly partialFill?: number;
  readonly corporateActions?: readonly CorporateAction[];
}): Promise<{ readonly alpaca: LocalAlpaca; readonly env: Readonly<Record<string, string>> }> {
  const config = parseConfig(readFileSync(options.configPath, 'utf8'), options.configPath);
  const alpaca = await startLocalAlpaca({
    dataDir: options.dataDir,
    ...LOCAL_KEYS,
    paper: {
      startTime: options.startTime,
      initialCash: config.backtest.initialCash,
      slippageBps: config.costs.slippageBps,
      ...(options.realism === undefined ? {} : { realism: options.realism }),
      ...(options.partialFill === undefined ? {} : { partialFill: options.partialFill }),
      ...(options.corporateActions === undefined ? {} : { corporateActions: options.corporateActions }),
    },
  });
  return {
    alpaca,
    env: {
      QUANTSHIFT_CONFIG: options.configPath,
      ALPACA_KEY_ID: LOCAL_KEYS.keyId,
      ALPACA_SECRET_KEY: LOCAL_KEYS.secret,
      ALPACA_BASE_URL: alpaca.url,
    },
  };
}

/** The crypto bot's local stack: the local Coinbase server on a simulated market clock, and the state and cache. */
export interface LocalCryptoStack {
  readonly coinbase: LocalCoinbase;
  /** The market clock (ISO), moved by {@link LocalCryptoStack.setTime} only forward. */
  readonly time: string;
  setTime(time: string): void;
  readonly dynamo: DynamoDBDocumentClient;
  /** The environment to run the crypto functions against this stack (a local rehearsal that sends). */
  readonly env: Readonly<Record<string, string>>;
  close(): Promise<void>;
}

/**
 * Starts the crypto bot's local stack: the local Coinbase server in its daily model (market IOC
 * orders fill at the day's open and resting stop-limits trigger from the day's range, both with
 * the config's `costs.slippageBps`, as the backtest's fill rules say), the config's taker and maker
 * fees, USD cash of the config's `backtest.initialCash`, a CDP key made on the spot (never a real
 * one), dynalite and the cache. The functions run as the paper stage with `DRY_RUN=false` and
 * `LOCAL_REHEARSAL=true`: their orders reach the loopback server only.
 */
export async function startLocalCryptoStack(options: {
  readonly dataDir: string;
  readonly startTime: string;
  readonly configPath: string;
  readonly withCache?: boolean;
}): Promise<LocalCryptoStack> {
  const config = parseConfig(readFileSync(options.configPath, 'utf8'), options.configPath);
  let clock = Date.parse(options.startTime);
  const products = configProducts(config);
  const key = generateTestCdpKey('ES256');
  const coinbase = await startLocalCoinbase({
    dataDir: options.dataDir,
    keys: [{ name: key.cdpKey.name, publicKey: key.publicKey }],
    balances: { USD: config.backtest.initialCash },
    takerFeeBps: config.costs.fees?.takerBps ?? 0,
    makerFeeBps: config.costs.fees?.makerBps ?? 0,
    now: () => clock,
    daily: { slippageBps: config.costs.slippageBps },
    ...(products === undefined ? {} : { products: localProducts(products) }),
  });
  const state = await startLocalStateAndCache(options);
  return {
    coinbase,
    get time() {
      return new Date(clock).toISOString();
    },
    setTime(time: string) {
      const next = Date.parse(time);
      if (!(next >= clock))
        throw new InvalidParameterError(`local crypto stack: the clock only moves forward (asked ${time})`);
      clock = next;
    },
    dynamo: state.dynamo,
    env: {
      ...state.env,
      QUANTSHIFT_CONFIG: options.configPath,
      DRY_RUN: 'false',
      LOCAL_REHEARSAL: 'true',
      COINBASE_KEY_NAME: key.cdpKey.name,
      COINBASE_PRIVATE_KEY: key.cdpKey.privateKey,
      COINBASE_BASE_URL: coinbase.url,
    },
    async close() {
      await coinbase.close();
      await state.close();
    },
  };
}

/**
 * The state and cache half of a local stack, shared by the equity and the crypto ones: dynalite
 * with the state and idempotency tables, and (unless `withCache: false`) redis-server behind the
 * Upstash bridge, optionally behind fault links; `env` names them for the functions.
 */
export async function startLocalStateAndCache(options: {
  readonly withCache?: boolean;
  readonly faultLinks?: boolean;
}) {
  const dynamo = await startLocalDynamo();
  await createStateTable(dynamo.client, 'quantshift-local-state');
  await dynamo.client.send(
    new CreateTableCommand({
      TableName: 'quantshift-local-idempotency',
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  const redis = options.withCache === false ? undefined : await startRedisServer();
  const bridge =
    redis === undefined
      ? undefined
      : await startUpstashBridge({ redisUrl: redis.url, token: LOCAL_UPSTASH_TOKEN });
  const links =
    options.faultLinks === true
      ? {
          dynamo: await startFaultLink(dynamo.endpoint),
          cache: bridge === undefined ? undefined : await startFaultLink(bridge.url),
        }
      : undefined;
  const env: Record<string, string> = {
    STAGE: 'paper',
    STATE_TABLE: 'quantshift-local-state',
    IDEMPOTENCY_TABLE: 'quantshift-local-idempotency',
    DYNAMODB_ENDPOINT: links?.dynamo.url ?? dynamo.endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    POWERTOOLS_TRACE_DISABLED: 'true',
    POWERTOOLS_METRICS_NAMESPACE: 'QuantShift',
    // The simulated clock runs days in seconds: Alpaca's 200 requests a minute does not apply here.
    BROKER_RATE_LIMIT: '1000000',
    ...(bridge === undefined
      ? {}
      : {
          UPSTASH_REDIS_REST_URL: links?.cache?.url ?? bridge.url,
          UPSTASH_REDIS_REST_TOKEN: bridge.token,
        }),
  };
  return {
    dynamo: dynamo.client,
    env,
    links,
    async close() {
      await links?.dynamo.close();
      await links?.cache?.close();
      await bridge?.close();
      await redis?.close();
      await dynamo.close();
    },
  };
}
