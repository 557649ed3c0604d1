import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../shared/cli/main.js';
import { reconcileCommand } from '../../shared/cli/reconcile.js';
import { clientOrderId } from '../../shared/core/live/orders.js';
import type { IntentRecord } from '../../shared/core/ports/state-store.js';
import { endOfDay } from '../../shared/live/end-of-day.js';
import { entryRefusal } from '../../shared/live/entry-gate.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { generateSignals } from '../../shared/live/generate-signals.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import type { ReconciliationResult } from '../../shared/live/reconcile.js';
import { riskCheck } from '../../shared/live/risk-check.js';
import { marketIntent, postOrders, splitBarsDir, startLiveStack } from '../helpers/live-stack.js';

// 2021-03-18 and 2021-03-19 (New York on daylight saving time: 09:00 = 13:00Z). The config's
// signals enter SPY at the 03-18 open with 53 shares (see live-steps.test.ts).
const D1 = '2021-03-18';
const D2 = '2021-03-19';
const at = (day: string, hhmm: string) =>
  `${day}T${String(Number(hhmm.slice(0, 2)) + 4).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;

let stack: Awaited<ReturnType<typeof startLiveStack>> | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

type Stack = NonNullable<typeof stack>;

/** `quantshift reconcile <args>` through the CLI function, acting through the stack's context. */
async function reconcileCli(s: Stack, args: readonly string[]) {
  let stdout = '';
  let stderr = '';
  const sink = (add: (text: string) => void) =>
    new Writable({
      write(chunk, _encoding, done) {
        add(String(chunk));
        done();
      },
    });
  const io = { stdout: sink((t) => (stdout += t)), stderr: sink((t) => (stderr += t)) };
  const local = ['--endpoint', s.env.DYNAMODB_ENDPOINT as string, '--table', s.env.STATE_TABLE as string];
  const code = await reconcileCommand([...args, ...local], io, s.env, async () => s.ctx).catch(
    (error: Error) => {
      stderr += error.message;
      return -1;
    },
  );
  return { code, stdout, stderr, json: () => JSON.parse(stdout) as Record<string, unknown> };
}

const reconciliationAlerts = (s: Stack) =>
  s.notifier.sent.filter((n) => n.severity === 'critical' && n.subject.startsWith('Reconciliation:'));
const spyLine = (r: ReconciliationResult) => r.symbols.find((l) => l.symbol === 'SPY');
/** Day one: the strategy's entries at the open, their stops, and end-of-day; returns the report. */
async function tradeDayOne(s: Stack, manual?: () => Promise<void>) {
  const { ctx } = s;
  await marketOpenCheck(ctx, at(D1, '09:00'));
  await generateSignals(ctx, at(D1, '09:10'));
  const executed = await executeOrders(ctx, at(D1, '09:15'));
  expect(executed.reconciliation).toMatchObject({ mismatches: 0, blocked: [] });
  s.alpaca.setTime(at(D1, '10:00'));
  await riskCheck(ctx, at(D1, '10:00'));
  await manual?.();
  s.alpaca.setTime(at(D1, '16:15'));
  const report = await endOfDay(ctx, at(D1, '16:15'));
  if (!('date' in report)) throw new Error('expected a report');
  return report;
}

/**
 * Day one with `bucket` SPY bought by hand (the UNASSIGNED bucket, in the old shares, beside the
 * sleeve's 53), then day two: SPY splits 4:1 at the open, listed the same day (the bars in the new
 * shares from it); 10:00, no risk check yet.
 */
async function bucketThenSplitOnD2(bucket: number): Promise<Stack> {
  stack = await startLiveStack({
    startTime: at(D1, '08:00'),
    withCache: false,
    corporateActions: [{ kind: 'split', symbol: 'SPY', date: D2, ratio: 4 }],
    dataDir: splitBarsDir('SPY', D2, 4),
  });
  const s = stack;
  const report = await tradeDayOne(s, async () => {
    await s.ctx.broker.submitOrder({
      clientOrderId: 'desk-manual-split',
      symbol: 'SPY',
      side: 'buy',
      qty: bucket,
      type: 'market',
      timeInForce: 'day',
    });
    s.alpaca.setTime(at(D1, '10:30'));
  });
  expect(spyLine(report.reconciliation)).toMatchObject({ sleevesQty: 53, unassignedAfter: bucket });
  s.alpaca.setTime(at(D2, '08:00'));
  await marketOpenCheck(s.ctx, at(D2, '09:00'));
  s.alpaca.setTime(at(D2, '10:00'));
  expect((await s.ctx.broker.getPositions()).find((p) => p.symbol === 'SPY')?.qty).toBe(4 * (53 + bucket));
  return s;
}

/**
 * Day two's list as a risk check whose reads of the broker never agreed wrote it before the fix: the
 * day's split applied to the records (the bucket of `bucket` old shares now 4x), `bookedFills` `{}`
 * (naming no split), so the list's split key says nothing about its shares.
 */
async function splitListWithoutKey(s: Stack, bucket: number): Promise<void> {
  const { ctx } = s;
  const d1 = await ctx.store.getLatestPositions();
  if (d1 === undefined) throw new Error('expected a positions list');
  const scaled = d1.positions.map((p) =>
    p.symbol === 'SPY'
      ? {
          ...p,
          qty: p.qty * 4,
          avgEntryPrice: p.avgEntryPrice / 4,
          stop: p.stop === null ? null : p.stop / 4,
        }
      : p,
  );
  expect(scaled.filter((p) => p.symbol === 'SPY').map((p) => p.qty)).toEqual([212, 4 * bucket]);
  await ctx.store.putPositions(D2, scaled, at(D2, '09:45'), {});
}

/** An order intent of day two, recorded as generate-signals would. */
function intentOf(s: Stack, purpose: 'entry' | 'exit', side: 'buy' | 'sell', qty: number): IntentRecord {
  return marketIntent(
    s.ctx,
    {
      symbol: 'SPY',
      day: D2,
      purpose,
      side,
      qty,
      timeInForce: 'opg',
      referencePrice: 390,
      createdAt: at(D2, '09:10'),
    },
    purpose === 'entry' ? { protectiveStop: 370 } : {},
  );
}

describe('reconciliation against the local stack', () => {
  it("counts a fill between the risk check's scheduled time and its read of the broker once: the list names the fills it booked", async () => {
    stack = await startLiveStack({ startTime: at(D1, '08:00'), withCache: false });
    const s = stack;
    const { ctx } = s;
    await marketOpenCheck(ctx, at(D1, '09:00'));
    await generateSignals(ctx, at(D1, '09:10'));
    expect((await executeOrders(ctx, at(D1, '09:15'))).reconciliation).toMatchObject({ mismatches: 0 });
    s.alpaca.setTime(at(D1, '10:00'));
    await riskCheck(ctx, at(D1, '10:00'));
    // The interleaving: the risk check scheduled at 10:15 reads the broker at 10:16, after a
    // sleeve's exit (its own order id) filled at 10:15:30.
    s.alpaca.setTime('2021-03-18T14:15:30.000Z');
    const exitId = clientOrderId({
      stage: ctx.stage,
      strategy: ctx.config.name,
      symbol: 'SPY',
      date: D1,
      purpose: 'exit',
    });
    await ctx.broker.submitOrder({
      clientOrderId: exitId,
      symbol: 'SPY',
      side: 'sell',
      qty: 3,
      type: 'market',
      timeInForce: 'day',
    });
    s.alpaca.setTime(at(D1, '10:16'));
    const fills = (await ctx.broker.getActivities({ after: at(D1, '00:00') })).flatMap((a) =>
      a.kind === 'fill' ? [a] : [],
    );
    expect(fills.map((f) => [f.side, f.qty])).toEqual([
      ['buy', 53],
      ['sell', 3],
    ]);
    const [entry, exit] = fills as [(typeof fills)[number], (typeof fills)[number]];
    expect(Date.parse(exit.time)).toBeGreaterThan(Date.parse(at(D1, '10:15')));
    await riskCheck(ctx, at(D1, '10:15'));
    const listed = await ctx.store.getLatestPositions();
    expect(listed?.writtenAt).toBe(at(D1, '10:15'));
    expect(listed?.bookedFills).toEqual({ [entry.orderId]: 53, [exit.orderId]: 3 });
    expect(listed?.positions.map((p) => [p.sleeve, p.symbol, p.qty])).toEqual([[ctx.config.name, 'SPY', 50]]);
    // A rerun of execute-orders reconciles against that list: the exit is in it, not new to it.
    s.alpaca.setTime(at(D1, '10:30'));
    const again = await executeOrders(ctx, at(D1, '10:30'));
    expect(again.reconciliation).toMatchObject({ mismatches: 0, blocked: [] });
    expect(spyLine(again.reconciliation as ReconciliationResult)).toMatchObject({
      brokerQty: 50,
      sleevesQty: 50,
      unassignedAfter: 0,
    });
    expect(reconciliationAlerts(s)).toEqual([]);
  });

  it('a manual buy at the broker goes to UNASSIGNED: one alert, SPY entries refused, exits go on; --assign clears it and entries resume', async () => {
    stack = await startLiveStack({ startTime: at(D1, '08:00'), withCache: false });
    const s = stack;
    const { ctx } = s;
    const report = await tradeDayOne(s, async () => {
      // Someone buys 10 SPY directly at the broker, under a client order id that is not ours.
      await ctx.broker.submitOrder({
        clientOrderId: 'desk-manual-1',
        symbol: 'SPY',
        side: 'buy',
        qty: 10,
        type: 'market',
        timeInForce: 'day',
      });
      s.alpaca.setTime(at(D1, '10:30'));
    });
    expect(report.reconciliation.mismatches).toBe(1);
    expect(report.reconciliation.blocked).toEqual(['SPY']);
    expect(spyLine(report.reconciliation)).toMatchObject({
      brokerQty: 63,
      sleevesQty: 53,
      unassignedAfter: 10,
    });
    const stored = (await ctx.store.getLatestPositions())?.positions.filter((p) => p.symbol === 'SPY');
    // Schema 2: the single-strategy config's one sleeve is named after the config.
    expect(stored?.map((p) => [p.sleeve ?? null, p.qty])).toEqual([
      [ctx.config.name, 53],
      ['UNASSIGNED', 10],
    ]);
    // The manual fill is no closed trade of the strategy and no drift of its own.
    expect(report.closedTrades).toEqual([]);
    expect(reconciliationAlerts(s)).toHaveLength(1);
    expect(reconciliationAlerts(s)[0]?.text).toMatch(/desk|no intent of this stage explains: buy 10/);
    expect(s.logs.some((l) => l.startsWith('ERROR reconciliation mismatch'))).toBe(true);

    // Unchanged on the next run: not alerted again.
    await endOfDay(ctx, at(D1, '16:15'));
    expect(reconciliationAlerts(s)).toHaveLength(1);

    // Day two: an entry in SPY is refused (naming the shares and the command), the exit goes on.
    s.alpaca.setTime(at(D2, '08:00'));
    await marketOpenCheck(ctx, at(D2, '09:00'));
    expect(await entryRefusal(ctx, D2, 'SPY')).toMatch(
      /SPY has 10 UNASSIGNED shares .*quantshift reconcile --assign <sleeve> --symbol SPY/,
    );
    expect(await entryRefusal(ctx, D2, 'QQQ')).toBeNull();
    const entry = intentOf(s, 'entry', 'buy', 5);
    const exit = intentOf(s, 'exit', 'sell', 3);
    await ctx.store.createIntent(entry);
    await ctx.store.createIntent(exit);
    const executed = await executeOrders(ctx, at(D2, '09:15'));
    expect(executed.reconciliation).toMatchObject({ mismatches: 0, blocked: ['SPY'] });
    expect((await ctx.store.getIntent(D2, entry.clientOrderId))?.status).toBe('skipped');
    expect((await ctx.store.getIntent(D2, entry.clientOrderId))?.reason).toMatch(/10 UNASSIGNED shares/);
    expect((await ctx.store.getIntent(D2, exit.clientOrderId))?.status).toBe('accepted');
    // A rerun after the open, before any risk check rewrote the list: the sleeve's own exit fill is
    // added to the list of the day before, never mistaken for a difference.
    s.alpaca.setTime(at(D2, '09:40'));
    const rerun = await executeOrders(ctx, at(D2, '09:40'));
    expect(rerun.reconciliation?.mismatches).toBe(0);
    expect(spyLine(rerun.reconciliation as ReconciliationResult)).toMatchObject({
      brokerQty: 60,
      sleevesQty: 50,
      unassignedAfter: 10,
    });
    s.alpaca.setTime(at(D2, '10:00'));
    await riskCheck(ctx, at(D2, '10:00'));
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY')?.qty).toBe(60);
    // The sleeve's stop covers its own 50 shares, never the bucket's.
    const stopQty = async () =>
      (await ctx.broker.listOrders({ status: 'open', symbols: ['SPY'] })).filter((o) => o.type === 'stop')[0]
        ?.qty;
    expect(await stopQty()).toBe(50);

    // The read-only view says so and changes nothing.
    const shown = await reconcileCli(s, ['--time', at(D2, '10:02'), '--format', 'json']);
    expect(shown.code).toBe(0);
    expect(shown.json()).toMatchObject({
      command: 'reconcile',
      action: 'show',
      blocked: ['SPY'],
      mismatches: 0,
    });

    // A wrong sleeve is refused; the operator assigns the shares to the strategy's sleeve.
    const wrong = await reconcileCli(s, [
      '--assign',
      'nope',
      '--symbol',
      'SPY',
      '--reason',
      'x',
      '--time',
      at(D2, '10:04'),
    ]);
    expect(wrong.code).toBe(-1);
    expect(wrong.stderr).toMatch(/not a sleeve of this config/);
    const assigned = await reconcileCli(s, [
      '--assign',
      ctx.config.name,
      '--symbol',
      'SPY',
      '--reason',
      'the desk bought them for the strategy',
      '--by',
      'alice',
      '--time',
      at(D2, '10:05'),
      '--format',
      'json',
    ]);
    expect(assigned.code).toBe(0);
    expect(assigned.json()).toMatchObject({
      action: 'assign',
      qty: 10,
      sleeveQty: 60,
      reconciliation: { blocked: [] },
    });
    expect(await entryRefusal(ctx, D2, 'SPY')).toBeNull();
    const audit = await ctx.store.listAudit(at(D2, '00:00'), at(D2, '19:00'));
    expect(audit.find((a) => a.action === 'reconcile-assign')).toMatchObject({
      by: 'alice',
      reason: 'the desk bought them for the strategy',
      details: { symbol: 'SPY', sleeve: ctx.config.name, qty: 10 },
    });
    await riskCheck(ctx, at(D2, '10:15'));
    expect(await stopQty()).toBe(60);

    // End of day two: the sleeve keeps the assigned shares; nothing new to alert.
    s.alpaca.setTime(at(D2, '16:15'));
    const next = await endOfDay(ctx, at(D2, '16:15'));
    if (!('date' in next)) throw new Error('expected a report');
    expect(next.reconciliation).toMatchObject({ mismatches: 0, blocked: [] });
    expect(spyLine(next.reconciliation)).toMatchObject({ brokerQty: 60, sleevesQty: 60, unassignedAfter: 0 });
    expect(reconciliationAlerts(s)).toHaveLength(1);
  });

  it("generate-signals moving a sleeve's stop keeps the UNASSIGNED bucket in the list it writes", async () => {
    stack = await startLiveStack({ startTime: at(D1, '08:00'), withCache: false });
    const s = stack;
    const { ctx } = s;
    await tradeDayOne(s, async () => {
      await ctx.broker.submitOrder({
        clientOrderId: 'desk-manual-2',
        symbol: 'SPY',
        side: 'buy',
        qty: 10,
        type: 'market',
        timeInForce: 'day',
      });
      s.alpaca.setTime(at(D1, '10:30'));
    });
    // The sleeve's stop far below the market in D1's list: the trailing stop ratchets it at D1's close.
    const d1 = await ctx.store.getLatestPositions();
    if (d1 === undefined) throw new Error('expected a positions list');
    await ctx.store.putPositions(
      d1.date,
      d1.positions.map((p) => (p.symbol === 'SPY' && p.sleeve === ctx.config.name ? { ...p, stop: 300 } : p)),
      d1.writtenAt,
      d1.bookedFills,
    );
    s.alpaca.setTime(at(D2, '08:00'));
    await marketOpenCheck(ctx, at(D2, '09:00'));
    await generateSignals(ctx, at(D2, '09:10'));
    const latest = await ctx.store.getLatestPositions();
    // The stop moved, so generate-signals wrote D2's list.
    expect(latest?.date).toBe(D2);
    expect(latest?.positions.filter((p) => p.symbol === 'SPY').map((p) => [p.sleeve ?? null, p.qty])).toEqual(
      [
        [ctx.config.name, 53],
        ['UNASSIGNED', 10],
      ],
    );
    expect(await entryRefusal(ctx, D2, 'SPY')).toMatch(/10 UNASSIGNED shares/);
  });

  it("--assign of an empty bucket with the broker's activities endpoint down refuses for the bucket (holds no shares), not for the activities: the splits are read only for a bucket that holds shares", async () => {
    stack = await startLiveStack({ startTime: at(D1, '08:00'), withCache: false });
    const s = stack;
    const { ctx } = s;
    await tradeDayOne(s);
    s.alpaca.setTime(at(D2, '10:00'));
    const real = ctx.broker.getActivities.bind(ctx.broker);
    ctx.broker.getActivities = async () => {
      throw new Error('activities down');
    };
    const args = ['--assign', ctx.config.name, '--symbol', 'SPY', '--reason', 'x', '--time', at(D2, '10:00')];
    const assigned = await reconcileCli(s, args);
    ctx.broker.getActivities = real;
    expect(assigned.code).toBe(-1);
    expect(assigned.stderr).toMatch(/holds no shares/);
  }, 120_000);

  it('--flatten sells the bucket exactly once, even when run twice, and clears it', async () => {
    stack = await startLiveStack({ startTime: at(D1, '08:00'), withCache: false });
    const s = stack;
    const { ctx } = s;
    await tradeDayOne(s, async () => {
      await ctx.broker.submitOrder({
        clientOrderId: 'desk-manual-2',
        symbol: 'SPY',
        side: 'buy',
        qty: 7,
        type: 'market',
        timeInForce: 'day',
      });
      s.alpaca.setTime(at(D1, '10:30'));
    });
    s.alpaca.setTime(at(D2, '10:00'));
    await marketOpenCheck(ctx, at(D2, '09:00'));
    const before = postOrders(s).length;
    const args = ['--flatten', '--symbol', 'SPY', '--reason', 'not ours', '--by', 'bob', '--format', 'json'];
    const [first, second] = await Promise.all([
      reconcileCli(s, [...args, '--time', at(D2, '10:00')]),
      reconcileCli(s, [...args, '--time', at(D2, '10:00')]),
    ]);
    const third = await reconcileCli(s, [...args, '--time', at(D2, '10:10')]);
    expect([first.code, second.code, third.code]).toEqual([0, 0, 0]);
    const id = clientOrderId({
      stage: ctx.stage,
      strategy: 'UNASSIGNED',
      symbol: 'SPY',
      date: D2,
      purpose: 'flatten',
    });
    expect(id).toMatch(/-SPY-20210319-flatten$/);
    // One order at the broker (a concurrent run's second POST, if any, is refused as a duplicate id).
    const flattens = (await ctx.broker.listOrders({ status: 'all', symbols: ['SPY'] })).filter((o) =>
      o.clientOrderId.includes('flatten'),
    );
    expect(flattens.map((o) => o.clientOrderId)).toEqual([id]);
    expect(postOrders(s).length - before).toBeLessThanOrEqual(2);
    const order = await ctx.broker.getOrderByClientOrderId(id);
    expect(order).toMatchObject({ side: 'sell', qty: 7, status: 'filled' });
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY')?.qty).toBe(53);
    expect(third.json()).toMatchObject({ reconciliation: { blocked: [] } });
    expect(['already-flattened', 'empty']).toContain(third.json().status);
    expect(await entryRefusal(ctx, D2, 'SPY')).toBeNull();
    const audit = await ctx.store.listAudit(at(D2, '00:00'), at(D2, '19:00'));
    expect(audit.filter((a) => a.action === 'reconcile-flatten')).toHaveLength(1);
    // The flatten's fill is the bucket's, not the sleeve's: end-of-day keeps the sleeve's 53.
    s.alpaca.setTime(at(D2, '16:15'));
    const report = await endOfDay(ctx, at(D2, '16:15'));
    if (!('date' in report)) throw new Error('expected a report');
    expect(spyLine(report.reconciliation)).toMatchObject({
      brokerQty: 53,
      sleevesQty: 53,
      unassignedAfter: 0,
    });
    expect(report.reconciliation.mismatches).toBe(0);
    expect(reconciliationAlerts(s)).toHaveLength(1);
  });

  it('shares sold outside (the broker holds fewer than the sleeve): a negative bucket, alerted, entries refused; --flatten refuses, --assign charges the sleeve', async () => {
    stack = await startLiveStack({ startTime: at(D1, '08:00'), withCache: false });
    const s = stack;
    const { ctx } = s;
    const report = await tradeDayOne(s, async () => {
      await ctx.broker.submitOrder({
        clientOrderId: 'desk-manual-3',
        symbol: 'SPY',
        side: 'sell',
        qty: 13,
        type: 'market',
        timeInForce: 'day',
      });
      s.alpaca.setTime(at(D1, '10:30'));
    });
    expect(spyLine(report.reconciliation)).toMatchObject({
      brokerQty: 40,
      sleevesQty: 53,
      unassignedAfter: -13,
    });
    expect(report.reconciliation.blocked).toEqual(['SPY']);
    expect(reconciliationAlerts(s)).toHaveLength(1);
    expect(reconciliationAlerts(s)[0]?.subject).toBe('Reconciliation: -13 SPY UNASSIGNED');
    expect(await entryRefusal(ctx, D2, 'SPY')).toMatch(/-13 UNASSIGNED shares/);

    // Through the CLI's own entry and environment (the live functions' context built from it).
    let stdout = '';
    const sink = new Writable({
      write(chunk, _e, done) {
        stdout += String(chunk);
        done();
      },
    });
    const shown = await runCli(
      ['reconcile', '--format', 'json', '--time', at(D1, '17:00')],
      { stdout: sink, stderr: new Writable({ write: (_c, _e, done) => done() }) },
      { ...process.env, ...s.env },
    );
    expect(shown).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ blocked: ['SPY'], mismatches: 0 });

    const flatten = await reconcileCli(s, [
      '--flatten',
      '--symbol',
      'SPY',
      '--reason',
      'x',
      '--time',
      at(D1, '17:00'),
    ]);
    expect(flatten.code).toBe(-1);
    expect(flatten.stderr).toMatch(/13 shares fewer than the sleeves .*nothing to sell/);
    const assigned = await reconcileCli(s, [
      '--assign',
      ctx.config.name,
      '--symbol',
      'SPY',
      '--reason',
      'the desk sold the strategy’s shares by mistake',
      '--time',
      at(D1, '17:00'),
      '--format',
      'json',
    ]);
    expect(assigned.json()).toMatchObject({ qty: -13, sleeveQty: 40, reconciliation: { blocked: [] } });
    expect(await entryRefusal(ctx, D2, 'SPY')).toBeNull();
  });

  it('--flatten on a split day before the risk check sells the bucket in the new shares (4:1: 4N, never more than the broker holds), once; the list follows the split once', async () => {
    const s = await bucketThenSplitOnD2(8);
    const { ctx } = s;
    const args = ['--flatten', '--symbol', 'SPY', '--reason', 'not ours', '--by', 'bob', '--format', 'json'];
    const first = await reconcileCli(s, [...args, '--time', at(D2, '10:00')]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.json()).toMatchObject({ status: 'sent', qty: 32, reconciliation: { blocked: [] } });
    const again = await reconcileCli(s, [...args, '--time', at(D2, '10:05')]);
    expect(again.code, again.stderr).toBe(0);
    expect(['already-flattened', 'empty']).toContain(again.json().status);
    const flattens = (await ctx.broker.listOrders({ status: 'all', symbols: ['SPY'] })).filter((o) =>
      o.clientOrderId.includes('flatten'),
    );
    expect(flattens.map((o) => [o.side, o.qty, o.status])).toEqual([['sell', 32, 'filled']]);
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY')?.qty).toBe(212);
    expect(await entryRefusal(ctx, D2, 'SPY')).toBeNull();
    // The day's risk check and end-of-day: the sleeve's 53 become 212 once; no bucket, no difference.
    await riskCheck(ctx, at(D2, '10:15'));
    expect(
      (await ctx.store.getLatestPositions())?.positions
        .filter((p) => p.symbol === 'SPY')
        .map((p) => [p.sleeve, p.qty]),
    ).toEqual([[ctx.config.name, 212]]);
    s.alpaca.setTime(at(D2, '16:15'));
    const report = await endOfDay(ctx, at(D2, '16:15'));
    if (!('date' in report)) throw new Error('expected a report');
    expect(spyLine(report.reconciliation)).toMatchObject({
      brokerQty: 212,
      sleevesQty: 212,
      unassignedAfter: 0,
    });
    expect(report.reconciliation.mismatches).toBe(0);
    expect(reconciliationAlerts(s)).toHaveLength(1);
  }, 120_000);

  it('--flatten on a split day applies the split only where the broker shows it: a list of the day in the new shares that names no split (bookedFills {}) is not split again (32 sold, not 128)', async () => {
    const s = await bucketThenSplitOnD2(8);
    const { ctx } = s;
    await splitListWithoutKey(s, 8);
    const args = ['--flatten', '--symbol', 'SPY', '--reason', 'not ours', '--by', 'bob', '--format', 'json'];
    const first = await reconcileCli(s, [...args, '--time', at(D2, '10:00')]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.json()).toMatchObject({ status: 'sent', qty: 32 });
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY')?.qty).toBe(212);
    expect(
      (await ctx.store.getLatestPositions())?.positions
        .filter((p) => p.symbol === 'SPY')
        .map((p) => [p.sleeve, p.qty]),
    ).toEqual([[ctx.config.name, 212]]);
  }, 120_000);

  it('--assign on a split day to a list of the day in the new shares that names no split moves 32, the stop not divided again', async () => {
    const s = await bucketThenSplitOnD2(8);
    const { ctx } = s;
    await splitListWithoutKey(s, 8);
    const stop = (await ctx.store.getLatestPositions())?.positions.find(
      (p) => p.symbol === 'SPY' && p.sleeve === ctx.config.name,
    )?.stop as number;
    const args = ['--assign', ctx.config.name, '--symbol', 'SPY', '--reason', 'the desk bought them for it'];
    const assigned = await reconcileCli(s, [...args, '--time', at(D2, '10:00'), '--format', 'json']);
    expect(assigned.code, assigned.stderr).toBe(0);
    // (Its read-only reconciliation still trusts such a list's missing split key: SPY blocked. The
    // risk check no longer writes one: see the test below.)
    expect(assigned.json()).toMatchObject({ qty: 32, sleeveQty: 244 });
    const spy = (await ctx.store.getLatestPositions())?.positions.filter((p) => p.symbol === 'SPY');
    expect(spy?.map((p) => [p.sleeve, p.qty])).toEqual([[ctx.config.name, 244]]);
    expect(spy?.[0]?.stop).toBeCloseTo(stop, 9);
  }, 120_000);

  it('a risk check whose reads of the broker never agree on a split day stores its list without bookedFills (not {}): a --flatten after it sells the bucket once in the new shares (32)', async () => {
    const s = await bucketThenSplitOnD2(8);
    const { ctx } = s;
    // Every read of the activities lists a new (foreign) fill: the check's reads never agree.
    const real = ctx.broker.getActivities.bind(ctx.broker);
    let churn = 0;
    ctx.broker.getActivities = async (query) => [
      ...(await real(query)),
      {
        kind: 'fill',
        id: `churn-${churn++}`,
        orderId: `churn-${churn}`,
        symbol: 'ZZZZ',
        side: 'buy',
        qty: 1,
        price: 1,
        time: at(D2, '09:59'),
        partial: false,
      },
    ];
    await riskCheck(ctx, at(D2, '10:00'));
    ctx.broker.getActivities = real;
    expect(churn).toBeGreaterThanOrEqual(6);
    const listed = await ctx.store.getLatestPositions();
    expect(listed?.date).toBe(D2);
    expect(listed?.bookedFills).toBeUndefined();
    expect(listed?.positions.filter((p) => p.symbol === 'SPY').map((p) => p.qty)).toEqual([32, 212]);
    const args = ['--flatten', '--symbol', 'SPY', '--reason', 'not ours', '--by', 'bob', '--format', 'json'];
    const first = await reconcileCli(s, [...args, '--time', at(D2, '10:05')]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.json()).toMatchObject({ status: 'sent', qty: 32 });
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY')?.qty).toBe(212);
  }, 120_000);

  it('--assign on a split day before the risk check moves the bucket in the new shares (4:1: 4N) into the sleeve, its stop divided by 4, once; a rerun changes nothing', async () => {
    const s = await bucketThenSplitOnD2(8);
    const { ctx } = s;
    const d1 = (await ctx.store.getLatestPositions())?.positions.find(
      (p) => p.symbol === 'SPY' && p.sleeve === ctx.config.name,
    );
    const stop = d1?.stop as number;
    expect(stop).toBeGreaterThan(0);
    const args = ['--assign', ctx.config.name, '--symbol', 'SPY', '--reason', 'the desk bought them for it'];
    const assigned = await reconcileCli(s, [...args, '--time', at(D2, '10:00'), '--format', 'json']);
    expect(assigned.code, assigned.stderr).toBe(0);
    expect(assigned.json()).toMatchObject({ qty: 32, sleeveQty: 244, reconciliation: { blocked: [] } });
    const listed = await ctx.store.getLatestPositions();
    const spy = listed?.positions.filter((p) => p.symbol === 'SPY');
    expect(spy?.map((p) => [p.sleeve, p.qty])).toEqual([[ctx.config.name, 244]]);
    expect(spy?.[0]?.stop).toBeCloseTo(stop / 4, 9);
    expect(listed?.bookedFills).toMatchObject({ [`split:SPY:${D2}`]: 4 });
    // A rerun: the bucket is empty (refused, named), the split not applied again.
    const rerun = await reconcileCli(s, [...args, '--time', at(D2, '10:05')]);
    expect(rerun.code).toBe(-1);
    expect(rerun.stderr).toMatch(/holds no shares/);
    expect((await ctx.store.getLatestPositions())?.positions).toEqual(listed?.positions);
    // The risk check: one stop for the 244 shares at the new price; end-of-day: no difference.
    await riskCheck(ctx, at(D2, '10:15'));
    const stops = (await ctx.broker.listOrders({ status: 'open', symbols: ['SPY'] })).filter(
      (o) => o.type === 'stop',
    );
    expect(stops.map((o) => o.qty)).toEqual([244]);
    expect(Math.abs((stops[0]?.stopPrice as number) - stop / 4)).toBeLessThanOrEqual(0.01);
    s.alpaca.setTime(at(D2, '16:15'));
    const report = await endOfDay(ctx, at(D2, '16:15'));
    if (!('date' in report)) throw new Error('expected a report');
    expect(spyLine(report.reconciliation)).toMatchObject({
      brokerQty: 244,
      sleevesQty: 244,
      unassignedAfter: 0,
    });
    expect(report.reconciliation.mismatches).toBe(0);
    const closed = (await ctx.store.getLatestPositions())?.positions.find((p) => p.symbol === 'SPY');
    expect(closed?.stop).toBeCloseTo(stop / 4, 9);
  }, 120_000);
});
