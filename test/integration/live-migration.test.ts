import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClosedTradeRecord } from '../../shared/core/ports/state-store.js';
import { endOfDay } from '../../shared/live/end-of-day.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { generateSignals } from '../../shared/live/generate-signals.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { riskCheck } from '../../shared/live/risk-check.js';
import { startLiveStack } from '../helpers/live-stack.js';

const at = (day: string, hhmm: string) =>
  `${day}T${String(Number(hhmm.slice(0, 2)) + 4).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;
const D1 = '2021-03-18';
const D2 = '2021-03-19';

type Stack = Awaited<ReturnType<typeof startLiveStack>>;
let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

async function tradeDay(s: Stack, day: string) {
  s.alpaca.setTime(at(day, '09:00'));
  await marketOpenCheck(s.ctx, at(day, '09:00'));
  await generateSignals(s.ctx, at(day, '09:10'));
  s.alpaca.setTime(at(day, '09:15'));
  await executeOrders(s.ctx, at(day, '09:15'));
  s.alpaca.setTime(at(day, '10:00'));
  await riskCheck(s.ctx, at(day, '10:00'));
  s.alpaca.setTime(at(day, '16:15'));
  return endOfDay(s.ctx, at(day, '16:15'));
}

/** Every item of the state table as the single-strategy code wrote it: no schemaVersion, no sleeve. */
function schemaOne(item: Record<string, unknown>): Record<string, unknown> {
  const { schemaVersion: _v, sleeve: _s, ...rest } = item;
  if (Array.isArray(rest.positions))
    rest.positions = rest.positions.map((p: Record<string, unknown>) => {
      const { sleeve: _ps, ...kept } = p;
      return kept;
    });
  return rest;
}

describe('a stage upgraded mid-life from the single-strategy items (schema 1)', () => {
  it('keeps its positions, stops and closed trades; what it writes next is schema 2 with the one sleeve', async () => {
    stack = await startLiveStack({ startTime: at(D1, '08:00') });
    const s = stack;
    const { ctx } = s;
    const name = ctx.config.name;
    await tradeDay(s, D1);
    const old: ClosedTradeRecord = {
      strategy: name,
      symbol: 'QQQ',
      side: 'long',
      qty: 5,
      entryDate: '2021-03-01',
      exitDate: '2021-03-10',
      exitTime: at('2021-03-10', '09:30'),
      entryPrice: 320,
      exitPrice: 325,
      pnlCents: 2500,
      exitExecutionId: 'old-exec-1',
      recordedAt: at('2021-03-10', '16:15'),
    };
    await ctx.store.recordClosedTrade(old);

    // Rewrite every item as the code before sleeves wrote it.
    const client = DynamoDBDocumentClient.from(
      new DynamoDBClient({ endpoint: s.env.DYNAMODB_ENDPOINT, region: 'us-east-1' }),
    );
    const TableName = s.env.STATE_TABLE as string;
    const items = (await client.send(new ScanCommand({ TableName }))).Items ?? [];
    expect(items.some((i) => i.schemaVersion === 2)).toBe(true);
    for (const item of items) await client.send(new PutCommand({ TableName, Item: schemaOne(item) }));
    const before = (await ctx.store.getLatestPositions())?.positions ?? [];
    expect(before.length).toBeGreaterThan(0);
    expect(before.every((p) => p.sleeve === undefined && p.stop !== null)).toBe(true);
    const stopsBefore = (await ctx.broker.listOrders({ status: 'open' })).filter((o) => o.type === 'stop');
    expect(stopsBefore.length).toBe(before.length);

    // The next day runs on the upgraded code.
    const report = await tradeDay(s, D2);
    if (!('date' in report)) throw new Error('expected a report');
    expect(report.drift).toEqual([]);
    const after = (await ctx.store.getLatestPositions())?.positions ?? [];
    for (const p of before) {
      const kept = after.find((a) => a.symbol === p.symbol);
      if (kept === undefined) continue; // closed by the day's own signals
      expect(kept).toMatchObject({ sleeve: name, qty: p.qty, entryDate: p.entryDate, entryRef: p.entryRef });
      expect(kept.stop as number).toBeGreaterThanOrEqual(p.stop as number);
    }
    expect(after.some((a) => before.some((p) => p.symbol === a.symbol))).toBe(true);
    // One stop per position at the broker: the old stops were kept or replaced, never doubled.
    const stops = (await ctx.broker.listOrders({ status: 'open' })).filter((o) => o.type === 'stop');
    expect(stops.map((o) => o.symbol).sort()).toEqual(after.map((p) => p.symbol).sort());
    // The closed trades of the old strategy are the sleeve's (TRADES#<config name>).
    expect((await ctx.store.listClosedTrades(name, 50)).map((t) => t.exitExecutionId)).toContain(
      'old-exec-1',
    );
    const written = (await client.send(new ScanCommand({ TableName }))).Items ?? [];
    const positionsItem = written.find((i) => i.PK === 'POSITIONS' && i.SK === D2);
    expect(positionsItem?.schemaVersion).toBe(2);
  }, 120_000);
});
