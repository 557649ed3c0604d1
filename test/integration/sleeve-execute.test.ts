import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveSleeveIds, parseConfig } from '../../shared/core/config/schema.js';
import { sleeveHash } from '../../shared/core/config/sleeve-hash.js';
import { StateStoreError } from '../../shared/core/errors.js';
import type { IntentRecord, StateStore } from '../../shared/core/ports/state-store.js';
import type { LiveContext } from '../../shared/live/context.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { haltSleeve } from '../../shared/live/kill-switch.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { legId } from '../../shared/live/sleeves.js';
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

/** A leg of one sleeve as generate-signals records it (never sent itself): entries buy, exits sell. */
const leg = (sleeve: string, symbol: string, purpose: 'entry' | 'exit', qty: number): IntentRecord => ({
  clientOrderId: legId(sleeve, symbol, DAY, purpose),
  leg: true,
  sleeve,
  date: DAY,
  strategy: sleeve,
  symbol,
  purpose,
  side: purpose === 'entry' ? 'buy' : 'sell',
  qty,
  type: 'market',
  timeInForce: 'opg',
  referencePrice: 100,
  ...(purpose === 'entry' ? { protectiveStop: 95 } : {}),
  status: 'recorded',
  filledQty: 0,
  configHash: 'h',
  gitCommit: 'c',
  createdAt: at('09:10'),
  updatedAt: at('09:10'),
});

/** The context whose store fails (a state-store error) on the `nth` leg mark to a net order (1-based). */
function failingMark(ctx: LiveContext, nth: number): LiveContext {
  const store: StateStore = Object.create(ctx.store);
  let marks = 0;
  store.transitionIntent = async (date, id, from, patch, unchanged) => {
    if (patch.netOrderId !== undefined && ++marks === nth)
      throw new StateStoreError('transitionIntent', `injected fault marking ${id}`);
    return ctx.store.transitionIntent(date, id, from, patch, unchanged);
  };
  return { ...ctx, store };
}

describe('a failure between the net intent and its legs’ marks: the retry finishes that net order', () => {
  // Each scenario trades its own symbol; trend buys 5 and rsi sells 10: the intended net is sell 5.
  const scenario = async (symbol: string, nth: number, between?: (ctx: LiveContext) => Promise<void>) => {
    const ctx: LiveContext = { ...stack.ctx, config: multi };
    await marketOpenCheck(ctx, at('09:00'));
    const legs = [leg('trend', symbol, 'entry', 5), leg('rsi', symbol, 'exit', 10)];
    for (const l of legs) await ctx.store.createIntent(l);
    stack.alpaca.setTime(at('09:15'));
    await expect(executeOrders(failingMark(ctx, nth), at('09:15'))).rejects.toThrow(/injected fault/);
    await between?.(ctx);
    await executeOrders(ctx, at('09:15'));
    const orders = (await ctx.broker.listOrders({ status: 'all' })).filter((o) => o.symbol === symbol);
    const nets = (await ctx.store.listIntents(DAY)).filter(
      (i) => i.symbol === symbol && i.legIds !== undefined && i.leg !== true,
    );
    const marked = await Promise.all(legs.map((l) => ctx.store.getIntent(DAY, l.clientOrderId)));
    return { orders, nets, marked };
  };

  it('one leg marked before the fault: the broker gets the one net sell 5, both legs carried by it', async () => {
    const { orders, nets, marked } = await scenario('SPY', 2);
    expect(orders.map((o) => ({ side: o.side, qty: o.qty }))).toEqual([{ side: 'sell', qty: 5 }]);
    expect(nets).toHaveLength(1);
    const net = nets[0] as IntentRecord;
    expect(orders[0]?.clientOrderId).toBe(net.clientOrderId);
    expect(net).toMatchObject({ side: 'sell', qty: 5, status: 'accepted' });
    expect([...(net.legIds ?? [])].sort()).toEqual(
      [legId('rsi', 'SPY', DAY, 'exit'), legId('trend', 'SPY', DAY, 'entry')].sort(),
    );
    for (const l of marked) expect(l).toMatchObject({ status: 'recorded', netOrderId: net.clientOrderId });
  });

  it('no leg marked and the entry’s sleeve halted before the retry: still the one net sell 5, never 15', async () => {
    const halt = async (ctx: LiveContext) => {
      await haltSleeve(
        ctx.store,
        { sleeve: 'trend', unlabelled: undefined },
        { reason: 'data gap', by: 'ops', time: at('09:12') },
      );
    };
    const { orders, nets, marked } = await scenario('QQQ', 1, halt);
    // QQQ's earlier order (the first test's trend entry) is not this scenario's.
    const mine = orders.filter((o) => o.clientOrderId !== entry('trend', 'QQQ', 330).clientOrderId);
    expect(mine.map((o) => ({ side: o.side, qty: o.qty }))).toEqual([{ side: 'sell', qty: 5 }]);
    expect(nets).toHaveLength(1);
    const net = nets[0] as IntentRecord;
    expect(mine[0]?.clientOrderId).toBe(net.clientOrderId);
    expect(net).toMatchObject({ side: 'sell', qty: 5, status: 'accepted' });
    // The entry leg goes with its net order (which carries an exit: never refused), as when it was marked.
    for (const l of marked) expect(l).toMatchObject({ status: 'recorded', netOrderId: net.clientOrderId });
  });
});

describe('the sleeves’ legs netted by the broker’s clock', () => {
  // Last in the file: the shared stack's clock only moves forward.
  it('a retry of the 09:15 run with the broker’s clock past 09:28: the legs are skipped before netting, no net order', async () => {
    const ctx: LiveContext = { ...stack.ctx, config: multi };
    await marketOpenCheck(ctx, at('09:00'));
    const legs = [leg('trend', 'IWM', 'entry', 5), leg('rsi', 'IWM', 'exit', 10)];
    for (const l of legs) await ctx.store.createIntent(l);
    const before = stack.notifier.sent.length;
    stack.alpaca.setTime(at('09:29'));
    await executeOrders(ctx, at('09:15'));
    for (const l of legs) {
      expect(await ctx.store.getIntent(DAY, l.clientOrderId)).toMatchObject({
        status: 'skipped',
        reason: 'after the 09:28 market-on-open cutoff',
      });
    }
    const nets = (await ctx.store.listIntents(DAY)).filter((i) => i.symbol === 'IWM' && i.leg !== true);
    expect(nets).toEqual([]);
    const alerts = stack.notifier.sent
      .slice(before)
      .filter((n) => /market-on-open orders skipped/i.test(n.subject));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.text).toContain('netted');
  });
});
