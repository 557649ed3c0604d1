import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { vi } from 'vitest';
import { DynamoStateStore, stateStoreDocumentClient } from '../../shared/adapters/dynamodb/state-store.js';
import { ListNotifier } from '../../shared/adapters/local/list-notifier.js';
import { startLocalLiveStack } from '../../shared/adapters/local/live-stack.js';
import type { CorporateAction } from '../../shared/adapters/local/paper-broker.js';
import { clientOrderId } from '../../shared/core/live/orders.js';
import type { BrokerPosition } from '../../shared/core/ports/broker.js';
import type { IntentRecord, StateStore } from '../../shared/core/ports/state-store.js';
import type { LiveContext } from '../../shared/live/context.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { generateSignals } from '../../shared/live/generate-signals.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { riskCheck } from '../../shared/live/risk-check.js';
import { buildLiveContext } from '../../shared/runtime/equity-live.js';
import { parseLiveEnv } from '../../shared/runtime/live.js';

/**
 * The live steps' context on the local stack (paper broker over HTTP, dynalite, redis behind the
 * Upstash bridge), built exactly as the handlers build it, with a notifier and a log the test reads.
 * The config starts its history at the first bundled bar, so the live indicators equal the backtest's.
 */
export async function startLiveStack(options: {
  startTime: string;
  withCache?: boolean;
  faultLinks?: boolean;
  /** The config file the stack trades (default config/equity-strategy.yaml). */
  config?: string;
  /** Splits and dividends the paper broker applies (none by default). */
  corporateActions?: readonly CorporateAction[];
  /** The bar files the local servers serve (default `data`; see {@link splitBarsDir}). */
  dataDir?: string;
}) {
  const configPath = join(mkdtempSync(join(tmpdir(), 'qs-live-')), 'config.yaml');
  writeFileSync(
    configPath,
    readFileSync(options.config ?? 'config/equity-strategy.yaml', 'utf8').replace(
      /^ {2}# historyFrom: 2021-01-11.*$/m,
      '  historyFrom: 2021-01-11',
    ),
  );
  const stack = await startLocalLiveStack({
    dataDir: options.dataDir ?? 'data',
    startTime: options.startTime,
    configPath,
    withCache: options.withCache ?? true,
    faultLinks: options.faultLinks ?? false,
    ...(options.corporateActions === undefined ? {} : { corporateActions: options.corporateActions }),
  });
  // The AWS SDK clients read their region and credentials from the process environment, as in Lambda.
  // A stack started without Redis must not inherit an earlier stack's bridge.
  for (const key of ['UPSTASH_REDIS_REST_URL', 'UPSTASH_REDIS_REST_TOKEN']) delete process.env[key];
  Object.assign(process.env, stack.env);
  const notifier = new ListNotifier();
  const logs: string[] = [];
  const ctx: LiveContext = {
    ...(await buildLiveContext(parseLiveEnv(process.env))),
    configHash: 'test-config-hash',
    gitCommit: 'test-commit',
    notifier,
    log: {
      info: (m, f) => logs.push(`INFO ${m} ${JSON.stringify(f ?? {})}`),
      warn: (m, f) => logs.push(`WARN ${m} ${JSON.stringify(f ?? {})}`),
      error: (m, f) => logs.push(`ERROR ${m} ${JSON.stringify(f ?? {})}`),
    },
  };
  return {
    ctx,
    alpaca: stack.alpaca,
    links: stack.links,
    env: stack.env,
    notifier,
    logs,
    close: () => stack.close(),
  };
}

/**
 * A copy of the bundled bar files (in a temporary directory) whose `symbol` bars from `date` on
 * follow a split of `ratio` the bundled (adjusted) files do not show: prices divided by it, volume
 * times it, as the market trades after the split. Earlier bars are as bundled.
 */
export function splitBarsDir(symbol: string, date: string, ratio: number): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'qs-bars-')), 'data');
  cpSync('data', dir, { recursive: true });
  const file = join(dir, `${symbol}.csv`);
  const [header, ...rows] = readFileSync(file, 'utf8').trimEnd().split('\n');
  const split = rows.map((row) => {
    const [day, close, high, low, open, volume] = row.split(',') as [string, ...string[]];
    if (day < date) return row;
    const price = (x: string | undefined) => String(Number(x) / ratio);
    return [day, price(close), price(high), price(low), price(open), String(Number(volume) * ratio)].join(
      ',',
    );
  });
  if (header !== 'Date,Close,High,Low,Open,Volume') throw new Error(`${file}: unexpected header ${header}`);
  writeFileSync(file, `${[header, ...split].join('\n')}\n`);
  return dir;
}

/** The stack `startLiveStack` returns. */
export type LiveStack = Awaited<ReturnType<typeof startLiveStack>>;

/** The order submissions the stack's paper broker received (POST /v2/orders), in order. */
export const postOrders = (stack: LiveStack) =>
  stack.alpaca.requestLog.filter((r) => r.method === 'POST' && r.path === '/v2/orders');

/**
 * A trading morning on a started stack: the market-open check at 09:00, the signals at 09:10,
 * execute-orders at 09:15, then the first risk check at 09:31 (the broker's clock moved there), which
 * places the stops; returns the broker's position in `symbol` after it (the test fails without one).
 * `at` turns an "HH:MM" New York time of the stack's day into its instant.
 */
export async function morningThroughFirstRiskCheck(
  stack: LiveStack,
  at: (hhmm: string) => string,
  symbol: string,
): Promise<BrokerPosition> {
  const { ctx } = stack;
  await marketOpenCheck(ctx, at('09:00'));
  await generateSignals(ctx, at('09:10'));
  await executeOrders(ctx, at('09:15'));
  stack.alpaca.setTime(at('09:31'));
  await riskCheck(ctx, at('09:31'));
  const position = (await ctx.broker.getPositions()).find((p) => p.symbol === symbol);
  if (position === undefined) throw new Error(`expected a ${symbol} position after the first risk check`);
  return position;
}

/** What a DynamoDB write's input shows to {@link storeLosingFirstAnswer}'s `matches`. */
export interface DynamoWriteInput {
  readonly ExpressionAttributeValues?: Record<string, { S?: string }>;
  readonly Item?: { PK?: { S?: string } };
  readonly ConditionExpression?: string;
}

/**
 * A state store as liveStore builds it (its own DynamoDB client, the SDK's default retries) on a
 * started stack, whose first write that `matches` commits and then loses its answer (a reset
 * connection): the SDK sends the write again, and that retry meets the write's own result.
 * `counts.writes` counts the matching writes sent (the retry included), `counts.dropped` the
 * answers dropped; `close` destroys the client. `meanwhile`, when given, runs after the write
 * committed and before its answer is lost (another writer committing before the SDK's retry).
 */
export function storeLosingFirstAnswer(
  stack: LiveStack,
  matches: (input: DynamoWriteInput) => boolean,
  meanwhile?: () => Promise<void>,
) {
  const dynamo = new DynamoDBClient({ endpoint: stack.env.DYNAMODB_ENDPOINT });
  const counts = { writes: 0, dropped: 0 };
  dynamo.middlewareStack.add(
    (next) => async (args) => {
      const write = matches(args.input as DynamoWriteInput);
      if (write) counts.writes++;
      const answer = await next(args);
      if (write && counts.dropped === 0) {
        counts.dropped++;
        await meanwhile?.();
        throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      }
      return answer;
    },
    { step: 'deserialize', name: 'dropFirstAnswer' },
  );
  const store = new DynamoStateStore(stateStoreDocumentClient(dynamo), stack.env.STATE_TABLE as string);
  return { store, counts, close: () => dynamo.destroy() };
}

/** A matcher for {@link storeLosingFirstAnswer}: an intent write that sets its status to `status`. */
export const writesStatus =
  (status: string) =>
  (input: DynamoWriteInput): boolean =>
    input.ExpressionAttributeValues?.[':set_status']?.S === status;

/**
 * A `recorded` market intent of the stack's config (as generate-signals records one at `createdAt`):
 * `side` `qty` `symbol` on `day` for `purpose` (its id the config's for that purpose), with `fields`
 * over it (another id, a sleeve, a reason...). Not stored: the caller creates it.
 */
export function marketIntent(
  ctx: LiveContext,
  order: {
    readonly symbol: string;
    readonly day: string;
    readonly purpose: 'entry' | 'exit';
    readonly side: 'buy' | 'sell';
    readonly qty: number;
    readonly timeInForce: IntentRecord['timeInForce'];
    readonly referencePrice: number;
    readonly createdAt: string;
  },
  fields: Partial<IntentRecord> = {},
): IntentRecord {
  const { symbol, day, purpose, createdAt } = order;
  return {
    clientOrderId: clientOrderId({ stage: ctx.stage, strategy: ctx.config.name, symbol, date: day, purpose }),
    date: day,
    strategy: ctx.config.name,
    symbol,
    purpose,
    side: order.side,
    qty: order.qty,
    type: 'market',
    timeInForce: order.timeInForce,
    referencePrice: order.referencePrice,
    status: 'recorded',
    filledQty: 0,
    configHash: ctx.configHash,
    gitCommit: ctx.gitCommit,
    createdAt,
    updatedAt: createdAt,
    ...fields,
  };
}

/**
 * A `recorded` market-on-open exit of the stack's config selling `qty` of `symbol` on `day` (as
 * generate-signals records one at `createdAt`), with `fields` over it (another id, time in force,
 * status...). Not stored: the caller creates it.
 */
export function exitIntent(
  ctx: LiveContext,
  position: { readonly symbol: string; readonly qty: number; readonly currentPrice: number },
  day: string,
  createdAt: string,
  fields: Partial<IntentRecord> = {},
): IntentRecord {
  const { symbol, qty, currentPrice: referencePrice } = position;
  return marketIntent(
    ctx,
    { symbol, day, purpose: 'exit', side: 'sell', qty, timeInForce: 'opg', referencePrice, createdAt },
    fields,
  );
}

/**
 * The broker's clock moved to `time`, then the order under `clientOrderId` cancelled at the broker
 * (the broker ending it unfilled; the store is not told).
 */
export async function brokerCancels(stack: LiveStack, time: string, clientOrderId: string): Promise<void> {
  stack.alpaca.setTime(time);
  await stack.ctx.broker.cancelOrder(
    (await stack.ctx.broker.getOrderByClientOrderId(clientOrderId))?.id as string,
  );
}

/** An order by hand on the stack's broker: a market day order of `qty` `symbol` under `clientOrderId`. */
export const orderByHand = (
  stack: LiveStack,
  clientOrderId: string,
  symbol: string,
  side: 'buy' | 'sell',
  qty: number,
) => stack.ctx.broker.submitOrder({ clientOrderId, symbol, side, qty, type: 'market', timeInForce: 'day' });

/** A sale by hand on the stack's broker: a market day sell of `qty` `symbol` under `desk-manual-sell`. */
export const soldByHand = (stack: LiveStack, symbol: string, qty: number) =>
  orderByHand(stack, 'desk-manual-sell', symbol, 'sell', qty);

/**
 * The store's `settleIntent` spied on so that, when it is asked to settle `id`, another writer (a
 * concurrent risk check) first settles it `skipped` from `recorded` (token `another-check`), then
 * the asked write runs: it finds the intent changed (the race lost). Restore the spy after.
 */
export function anotherWriterSettlesFirst(store: StateStore, id: string, now: string) {
  const settle = store.settleIntent.bind(store);
  return vi
    .spyOn(store, 'settleIntent')
    .mockImplementation(async (date, clientOrderId, from, patch, by, unchanged) => {
      if (clientOrderId === id)
        await settle(
          date,
          id,
          ['recorded'],
          { status: 'skipped', reason: 'superseded by another check', updatedAt: now },
          'another-check',
        );
      return settle(date, clientOrderId, from, patch, by, unchanged);
    });
}
