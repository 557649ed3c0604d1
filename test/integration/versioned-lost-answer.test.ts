/**
 * A versioned state write whose DynamoDB answer is lost after it committed (ECONNRESET after the
 * write): the SDK sends the write again, the retry fails its version condition on the write's own
 * result, and the store answers a conflict. A caller that re-reads and re-applies an additive change
 * then applies it twice. Against the real local servers (the local Alpaca paper broker over HTTP,
 * dynalite, redis-server behind the Upstash bridge); the lost answer is an SDK middleware.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { UNASSIGNED_SLEEVE } from '../../shared/core/ports/state-store.js';
import { endOfDay } from '../../shared/live/end-of-day.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { generateSignals } from '../../shared/live/generate-signals.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { assignBucket } from '../../shared/live/reconcile.js';
import { riskCheck } from '../../shared/live/risk-check.js';
import { startLiveStack, storeLosingFirstAnswer } from '../helpers/live-stack.js';

// New York is on daylight saving time in these weeks: 09:00 = 13:00Z.
const at = (day: string, hhmm: string) =>
  `${day}T${String(Number(hhmm.slice(0, 2)) + 4).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;
const D1 = '2021-03-18';

type Stack = Awaited<ReturnType<typeof startLiveStack>>;
let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

/** A store on its own client whose first versioned write to the item `pk` commits and loses its answer. */
const storeDroppingFirstAnswer = (s: Stack, pk: string) =>
  storeLosingFirstAnswer(s, (input) => input.Item?.PK?.S === pk && input.ConditionExpression !== undefined);

describe('a lost answer to a versioned write', () => {
  /**
   * D1 on the multi-strategy config: someone buys 2 MSFT at the broker outside the system and
   * end-of-day puts them in the UNASSIGNED bucket; returns the bucket's position and rsi's book then.
   */
  async function twoMsftInTheBucket(s: Stack) {
    const { ctx } = s;
    await marketOpenCheck(ctx, at(D1, '09:00'));
    await generateSignals(ctx, at(D1, '09:10'));
    s.alpaca.setTime(at(D1, '09:15'));
    await executeOrders(ctx, at(D1, '09:15'));
    s.alpaca.setTime(at(D1, '10:30'));
    await ctx.broker.submitOrder({
      clientOrderId: 'desk-manual-msft',
      symbol: 'MSFT',
      side: 'buy',
      qty: 2,
      type: 'market',
      timeInForce: 'day',
    });
    s.alpaca.setTime(at(D1, '16:15'));
    await endOfDay(ctx, at(D1, '16:15'));
    const bucket = (await ctx.store.getLatestPositions())?.positions.find(
      (p) => p.sleeve === UNASSIGNED_SLEEVE && p.symbol === 'MSFT',
    );
    expect(bucket?.qty).toBe(2);
    const before = await ctx.store.getSleevesState();
    const rsiBefore = before?.record.booked.books.find((b) => b.id === 'rsi');
    return {
      notional: Math.round(2 * (bucket?.avgEntryPrice as number) * 100),
      version: before?.version ?? 0,
      rsiCash: rsiBefore?.cash as number,
      rsiMsft: rsiBefore?.positions.find((p) => p.symbol === 'MSFT')?.qty ?? 0,
    };
  }

  /** `reconcile --assign` of the bucket's 2 MSFT to rsi, through `store`. */
  const assignTwoMsft = (s: Stack, store: Stack['ctx']['store']) =>
    assignBucket(
      { ...s.ctx, store },
      {
        by: 'ops',
        reason: 'desk bought MSFT for rsi',
        time: at(D1, '16:30'),
        sleeve: 'rsi',
        symbol: 'MSFT',
        stop: 200,
      },
    );

  /** The stored rsi book moved by exactly one assignment of the 2 shares since `before`. */
  async function expectAssignedOnce(s: Stack, before: Awaited<ReturnType<typeof twoMsftInTheBucket>>) {
    const rsiAfter = (await s.ctx.store.getSleevesState())?.record.booked.books.find((b) => b.id === 'rsi');
    expect(rsiAfter?.positions.find((p) => p.symbol === 'MSFT')?.qty).toBe(before.rsiMsft + 2);
    expect(rsiAfter?.cash).toBe(before.rsiCash - before.notional);
  }

  it('reconcile --assign whose sleeves-state write committed but lost its answer moves the shares and their cash once', async () => {
    stack = await startLiveStack({ startTime: at(D1, '08:00'), config: 'config/multi-strategy.yaml' });
    const s = stack;
    const before = await twoMsftInTheBucket(s);

    const faulty = storeDroppingFirstAnswer(s, 'SLEEVES');
    try {
      expect((await assignTwoMsft(s, faulty.store)).qty).toBe(2);
    } finally {
      faulty.close();
    }
    // The write committed, its answer was lost and the SDK's retry failed the version condition.
    expect(faulty.counts.dropped).toBe(1);
    expect(faulty.counts.writes).toBe(2);
    // One write: the version moved once, and the sleeve took the 2 shares and paid their notional once.
    expect((await s.ctx.store.getSleevesState())?.version).toBe(before.version + 1);
    await expectAssignedOnce(s, before);
  }, 120_000);

  it('and another writer committed between that write and its retry: still once', async () => {
    stack = await startLiveStack({ startTime: at(D1, '08:00'), config: 'config/multi-strategy.yaml' });
    const s = stack;
    const before = await twoMsftInTheBucket(s);

    // After the assignment's write committed, another writer (the stack's own store) reads the state
    // and writes it again before the SDK's retry: the item then carries that writer's write.
    let between: number | undefined;
    const faulty = storeLosingFirstAnswer(
      s,
      (input) => input.Item?.PK?.S === 'SLEEVES' && input.ConditionExpression !== undefined,
      async () => {
        const now = await s.ctx.store.getSleevesState();
        if (now === undefined) throw new Error('expected a sleeves state');
        const saved = await s.ctx.store.putSleevesState(now.record, now.version);
        between = 'version' in saved ? saved.version : undefined;
      },
    );
    try {
      expect((await assignTwoMsft(s, faulty.store)).qty).toBe(2);
    } finally {
      faulty.close();
    }
    expect(faulty.counts.dropped).toBe(1);
    expect(between).toBe(before.version + 2);
    // Two writes (the assignment's and the other writer's), the assignment applied once, not
    // re-applied after a conflict (a third write).
    await expectAssignedOnce(s, before);
    expect((await s.ctx.store.getSleevesState())?.version).toBe(before.version + 2);
    expect(faulty.counts.writes).toBe(2);
  }, 120_000);

  it("a risk check's daily-loss trip whose risk-state write lost its answer keeps its breaker event and alert", async () => {
    stack = await startLiveStack({ startTime: at(D1, '08:00') });
    const s = stack;
    const { ctx } = s;
    await marketOpenCheck(ctx, at(D1, '09:00'));
    await generateSignals(ctx, at(D1, '09:10'));
    s.alpaca.setTime(at(D1, '09:15'));
    await executeOrders(ctx, at(D1, '09:15'));
    s.alpaca.setTime(at(D1, '09:31'));
    await riskCheck(ctx, at(D1, '09:31'));
    // The day started with far more equity: the daily-loss breaker trips at the next check.
    const risk = await ctx.store.getRiskState();
    if (risk === undefined) throw new Error('expected a risk state');
    await ctx.store.putRiskState(
      { ...risk.state, day: D1, dayStartEquity: risk.state.lastEquity * 2 },
      risk.version,
    );
    const alertsBefore = s.notifier.sent.length;

    const faulty = storeDroppingFirstAnswer(s, 'RISK');
    s.alpaca.setTime(at(D1, '09:45'));
    try {
      const result = await riskCheck({ ...ctx, store: faulty.store }, at(D1, '09:45'));
      expect(faulty.counts.dropped).toBe(1);
      expect(result.breakerTrips).toEqual(['daily-loss']);
      // The store (its one lost answer spent) lists the breaker events: the trip is recorded once.
      const events = await faulty.store.listBreakerEvents(
        Date.parse(at(D1, '09:00')),
        Date.parse(at(D1, '16:00')),
      );
      expect(events.filter((e) => e.breaker === 'daily-loss' && e.action === 'trip')).toHaveLength(1);
    } finally {
      faulty.close();
    }
    expect((await ctx.store.getRiskState())?.version).toBe(risk.version + 2);
    expect(
      s.notifier.sent.slice(alertsBefore).filter((n) => n.subject === 'Breaker trip: daily-loss'),
    ).toHaveLength(1);
  }, 120_000);
});
