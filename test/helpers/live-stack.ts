import { readFileSync } from 'node:fs';
import { Redis } from '@upstash/redis';
import { AlpacaBroker } from '../../shared/adapters/alpaca/broker.js';
import { AlpacaMarketData } from '../../shared/adapters/alpaca/market-data.js';
import { createStateTable, DynamoStateStore } from '../../shared/adapters/dynamodb/state-store.js';
import { type LocalAlpaca, startLocalAlpaca } from '../../shared/adapters/local/alpaca-server.js';
import { startLocalDynamo } from '../../shared/adapters/local/dynamodb.js';
import { ListNotifier } from '../../shared/adapters/local/list-notifier.js';
import { startRedisServer } from '../../shared/adapters/local/redis-server.js';
import { startUpstashBridge } from '../../shared/adapters/local/upstash-bridge.js';
import { UpstashCache } from '../../shared/adapters/upstash/cache.js';
import { parseConfig } from '../../shared/core/config/schema.js';
import type { LiveContext } from '../../shared/live/context.js';

/** The live functions' local stack for tests: paper broker over HTTP, dynalite, redis behind the Upstash bridge. */
export async function startLiveStack(options: { startTime: string; withCache?: boolean }) {
  const keys = { keyId: 'test-key', secret: 'test-secret-value' };
  const alpaca: LocalAlpaca = await startLocalAlpaca({
    dataDir: 'data',
    ...keys,
    paper: { startTime: options.startTime },
  });
  const dynamo = await startLocalDynamo();
  await createStateTable(dynamo.client, 'quantshift-test');
  const store = new DynamoStateStore(dynamo.client, 'quantshift-test');
  const redis = options.withCache === false ? undefined : await startRedisServer();
  const bridge =
    redis === undefined ? undefined : await startUpstashBridge({ redisUrl: redis.url, token: 'test-token' });
  const cache =
    bridge === undefined
      ? undefined
      : new UpstashCache({
          redis: new Redis({ url: bridge.url, token: bridge.token }),
          prefix: 'qs:test:',
          onCorrupt: (error) => {
            throw error;
          },
        });
  const notifier = new ListNotifier();
  const logs: string[] = [];
  const config = parseConfig(
    readFileSync('config/equity-strategy.yaml', 'utf8').replace(
      '  lookbackDays: 730',
      '  lookbackDays: 730\n  historyFrom: 2021-01-11',
    ),
    'config/equity-strategy.yaml',
  );
  const ctx: LiveContext = {
    stage: 'paper',
    config,
    configHash: 'test-config-hash',
    gitCommit: 'test-commit',
    broker: new AlpacaBroker({
      ...keys,
      baseUrl: alpaca.url,
      retry: { maxRetries: 2, baseDelayMs: 1, maxDelayMs: 5 },
      rateLimit: false,
    }),
    marketData: new AlpacaMarketData({
      ...keys,
      baseUrl: alpaca.url,
      retry: { maxRetries: 2, baseDelayMs: 1, maxDelayMs: 5 },
      rateLimit: false,
    }),
    store,
    ...(cache === undefined ? {} : { cache }),
    notifier,
    log: {
      info: (m, f) => logs.push(`INFO ${m} ${JSON.stringify(f ?? {})}`),
      warn: (m, f) => logs.push(`WARN ${m} ${JSON.stringify(f ?? {})}`),
      error: (m, f) => logs.push(`ERROR ${m} ${JSON.stringify(f ?? {})}`),
    },
  };
  return {
    ctx,
    alpaca,
    store,
    notifier,
    logs,
    keys,
    async close() {
      await alpaca.close();
      await bridge?.close();
      await redis?.close();
      await dynamo.close();
    },
  };
}
