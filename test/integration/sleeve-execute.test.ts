import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveSleeveIds, parseConfig } from '../../shared/core/config/schema.js';
import { sleeveHash } from '../../shared/core/config/sleeve-hash.js';
import type { IntentRecord } from '../../shared/core/ports/state-store.js';
import type { LiveContext } from '../../shared/live/context.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { haltSleeve } from '../../shared/live/kill-switch.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { validationRecords } from '../../shared/pipeline/steps/aggregate.js';
import { startLiveStack } from '../helpers/live-stack.js';

// 2021-04-06, New York on daylight saving time (09:00 = 13:00Z).
const DAY = '2021-04-06';
const at = (hhmm: string) =>
  `${DAY}T${String(Number(hhmm.slice(0, 2)) + 4).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;
const text = readFileSync('config/multi-strategy.yaml', 'utf8');
const multi = parseConfig(text, 'config/multi-strategy.yaml');

let stack: Awaited<ReturnType<typeof startLiveStack>>;
beforeAll(async () => {
  stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
});
afterAll(async () => {
  await stack.close();
});

/** An entry intent of one sleeve, as the sleeves path records it (schema 2: `sleeve` set). */
const entry = (sleeve: string, symbol: string, referencePrice: number): IntentRecord => ({
  clientOrderId: `qs-t-${sleeve}-${symbol}-20210406-entry`,
  sleeve,
  date: DAY,
  strategy: sleeve,
  symbol,
  purpose: 'entry',
  side: 'buy',
  qty: 5,
  type: 'market',
  timeInForce: 'opg',
  referencePrice,
  protectiveStop: referencePrice * 0.95,
  status: 'recorded',
  filledQty: 0,
  configHash: 'h',
  gitCommit: 'c',
  createdAt: at('09:10'),
  updatedAt: at('09:10'),
});

/** The client order ids the broker holds, and how many orders were posted to it. */
const atBroker = async () => ({
  posted: stack.alpaca.requestLog.filter((r) => r.method === 'POST' && r.path === '/v2/orders').length,
  ids: (await stack.ctx.broker.listOrders({ status: 'all' })).map((o) => o.clientOrderId),
});

describe('execute-orders asks each entry’s sleeve: a halted or ungated sleeve stops, the others trade', () => {
  it('in the live stage, sends the validated sleeves’ entries and refuses the halted one’s and the edited one’s', async () => {
    // The stage trades config/multi-strategy.yaml with its rsi sleeve edited after the walk-forward.
    const deployed = parseConfig(
      text.replace(
        'params: { period: 14, entry: 30, exit: 50 }',
        'params: { period: 14, entry: 25, exit: 50 }',
      ),
      'deployed.yaml',
    );
    const ctx: LiveContext = { ...stack.ctx, stage: 'live', config: deployed };
    await marketOpenCheck(ctx, at('09:00'));
    // The walk-forward validated every sleeve of the config as it was.
    for (const record of validationRecords(
      multi,
      { jobId: 'a'.repeat(64), configHash: 'c'.repeat(64) },
      { proceed: true, failed: [] },
      new Map(),
      '2021-04-01T00:00:00.000Z',
    ))
      await ctx.store.putValidation(record);
    // ...and paper trading validated each of them as it was (the live gate asks both records).
    for (const sleeve of liveSleeveIds(multi))
      await ctx.store.putPaperValidation({
        sleeve,
        configHash: sleeveHash(multi, sleeve),
        decision: 'go',
        failed: [],
        figures: {},
        sessions: 30,
        from: '2021-02-01',
        to: '2021-03-15',
        decidedAt: '2021-04-01T00:00:00.000Z',
      });
    const trend = entry('trend', 'QQQ', 330);
    const breakout = entry('breakout', 'MSFT', 240);
    const rsi = entry('rsi', 'SPY', 400);
    for (const intent of [trend, breakout, rsi]) await ctx.store.createIntent(intent);
    // An operator halts breakout after the signals were recorded... but after the halt's skip ran,
    // a new breakout intent appears (a late signal run): execute-orders still refuses it.
    await haltSleeve(
      ctx.store,
      { sleeve: 'breakout', unlabelled: undefined },
      {
        reason: 'data gap',
        by: 'ops',
        time: at('09:11'),
      },
    );
    const late = entry('breakout', 'AAPL', 125);
    await ctx.store.createIntent(late);

    stack.alpaca.setTime(at('09:15'));
    const result = await executeOrders(ctx, at('09:15'));
    const status = (id: string) => result.intents.find((i) => i.clientOrderId === id);
    expect(status(trend.clientOrderId)?.status).toBe('accepted');
    expect(status(late.clientOrderId)).toMatchObject({
      status: 'skipped',
      reason: 'entry refused: sleeve breakout halted (data gap)',
    });
    expect(status(rsi.clientOrderId)).toMatchObject({ status: 'skipped' });
    expect(status(rsi.clientOrderId)?.reason).toMatch(
      /^entry refused: the passing walk-forward of "rsi" .* not the deployed sleeve/,
    );
    // The one halted at the halt itself was skipped then, never sent.
    expect((await ctx.store.getIntent(DAY, breakout.clientOrderId))?.status).toBe('skipped');
    expect(await atBroker()).toEqual({ posted: 1, ids: [trend.clientOrderId] });
  });
});
