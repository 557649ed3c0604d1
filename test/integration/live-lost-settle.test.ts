import { afterEach, describe, expect, it } from 'vitest';
import type { IntentRecord, IntentStatus } from '../../shared/core/ports/state-store.js';
import { initialRiskState, setSleeveHalt } from '../../shared/core/risk/index.js';
import type { LiveContext } from '../../shared/live/context.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { generateSignals } from '../../shared/live/generate-signals.js';
import { killSwitch } from '../../shared/live/kill-switch.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { riskCheck } from '../../shared/live/risk-check.js';
import { startLiveStack, storeLosingFirstAnswer, writesStatus } from '../helpers/live-stack.js';

/**
 * A write that settles an intent without the broker (expired as not sent, skipped or cancelled by
 * the kill switch, a sleeve's entry leg skipped at netting) whose DynamoDB answer is lost after it committed: the SDK's retry fails the
 * condition on that very write. On the real local servers (paper broker over HTTP, dynalite).
 * docs/live.md's failure-modes table names the scenario.
 */

// 2021-03-18 (daylight saving time: 09:00 New York = 13:00Z): the config enters SPY at this open.
const DAY = '2021-03-18';
const at = (hhmm: string) =>
  `${DAY}T${String(Number(hhmm.slice(0, 2)) + 4).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;

type Stack = Awaited<ReturnType<typeof startLiveStack>>;
let stack: Stack | undefined;
const closers: (() => void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) close();
  await stack?.close();
  stack = undefined;
});

/** Market-open check and signals for DAY: the one recorded SPY entry. */
async function signals(s: Stack): Promise<IntentRecord> {
  await marketOpenCheck(s.ctx, at('09:00'));
  const { intents } = await generateSignals(s.ctx, at('09:10'));
  const [spy] = intents;
  if (spy === undefined || intents.length !== 1 || spy.symbol !== 'SPY')
    throw new Error('expected the SPY entry alone');
  return spy;
}

/** The store whose first intent write to `status` loses its answer (`storeLosingFirstAnswer`). */
function losingFirstAnswer(s: Stack, status: IntentStatus) {
  const faulty = storeLosingFirstAnswer(s, writesStatus(status));
  closers.push(faulty.close);
  return faulty;
}

const notSent = (s: Stack) => s.notifier.sent.filter((n) => /not sent/i.test(n.subject));

describe('DynamoDB answer lost after a settling write committed', () => {
  it('the expire of an unsent intent: still alerted "Order not sent", exactly once', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const spy = await signals(stack);
    // No execute-orders run sent it: the risk check after the open expires it as not sent.
    stack.alpaca.setTime(at('10:00'));
    const { store, counts } = losingFirstAnswer(stack, 'expired');
    await riskCheck({ ...stack.ctx, store }, at('10:00'));
    expect(counts).toEqual({ writes: 2, dropped: 1 });
    expect(await stack.ctx.store.getIntent(DAY, spy.clientOrderId)).toMatchObject({ status: 'expired' });
    expect(notSent(stack)).toHaveLength(1);
    expect(notSent(stack)[0]).toMatchObject({ severity: 'critical' });
    expect(notSent(stack)[0]?.text).toContain(spy.clientOrderId);
    // The next check finds it settled: said once.
    await riskCheck(stack.ctx, at('10:15'));
    expect(notSent(stack)).toHaveLength(1);
    expect(stack.alpaca.requestLog.filter((r) => r.method === 'POST' && r.path === '/v2/orders')).toEqual([]);
  });

  it("the kill switch's skip of a recorded entry: still in its entriesSkipped", async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const spy = await signals(stack);
    stack.alpaca.setTime(at('09:12'));
    const { store, counts } = losingFirstAnswer(stack, 'skipped');
    const result = await killSwitch(
      { ...stack.ctx, store },
      { reason: 'drawdown alarm', by: 'ops', time: at('09:12'), flatten: false },
    );
    expect(counts).toEqual({ writes: 2, dropped: 1 });
    expect(result.entriesSkipped).toEqual([spy.clientOrderId]);
    expect(result.entriesPending).toEqual([]);
    expect(await stack.ctx.store.getIntent(DAY, spy.clientOrderId)).toMatchObject({ status: 'skipped' });
  });

  it("the kill switch's cancel of an entry claimed but not sent: still in its entriesCancelled, not pending", async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const spy = await signals(stack);
    // A run claimed it and died before sending it.
    const claimed = await stack.ctx.store.claimIntent(DAY, spy.clientOrderId, {
      by: 'run-1',
      at: at('09:15'),
    });
    expect(claimed).toMatchObject({ status: 'submitted' });
    stack.alpaca.setTime(at('09:16'));
    const { store, counts } = losingFirstAnswer(stack, 'cancelled');
    const ctx: LiveContext = { ...stack.ctx, store };
    const result = await killSwitch(ctx, {
      reason: 'drawdown alarm',
      by: 'ops',
      time: at('09:16'),
      flatten: false,
    });
    expect(counts).toEqual({ writes: 2, dropped: 1 });
    expect(result.entriesCancelled).toEqual([spy.clientOrderId]);
    expect(result.entriesPending).toEqual([]);
    expect(await stack.ctx.store.getIntent(DAY, spy.clientOrderId)).toMatchObject({ status: 'cancelled' });
  });

  it('a sleeves config\'s refused entry leg, skipped at netting: still in its "Entries refused" alert, exactly once', async () => {
    stack = await startLiveStack({
      startTime: at('08:00'),
      withCache: false,
      config: 'config/multi-strategy.yaml',
    });
    const { ctx } = stack;
    await marketOpenCheck(ctx, at('09:00'));
    const { intents } = await generateSignals(ctx, at('09:10'));
    const leg = intents.find((i) => i.leg === true && i.purpose === 'entry');
    if (leg?.sleeve === undefined) throw new Error('expected an entry leg of a sleeve');
    // Its sleeve is halted after the signals: execute-orders' netting refuses the leg (skipped).
    const stored = await ctx.store.getRiskState();
    const halted = setSleeveHalt(
      stored?.state ?? initialRiskState(100_000),
      leg.sleeve,
      true,
      Date.parse(at('09:12')),
      'ops',
      'sleeve review',
    );
    expect(await ctx.store.putRiskState(halted.state, stored?.version ?? 0)).not.toHaveProperty('conflict');
    stack.alpaca.setTime(at('09:15'));
    const { store, counts } = losingFirstAnswer(stack, 'skipped');
    await executeOrders({ ...ctx, store }, at('09:15'));
    expect(counts).toEqual({ writes: 2, dropped: 1 });
    expect(await ctx.store.getIntent(DAY, leg.clientOrderId)).toMatchObject({
      status: 'skipped',
      reason: `entry refused: sleeve ${leg.sleeve} halted (sleeve review)`,
    });
    const refusals = () =>
      stack?.notifier.sent.filter(
        (n) => n.subject === `Entries refused on ${DAY}` && n.text.includes(leg.clientOrderId),
      ) ?? [];
    expect(refusals()).toHaveLength(1);
    expect(refusals()[0]).toMatchObject({ severity: 'critical' });
    // A rerun finds the leg settled: said once.
    await executeOrders(ctx, at('09:16'));
    expect(refusals()).toHaveLength(1);
  });
});
