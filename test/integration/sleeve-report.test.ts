import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LiveContext } from '../../shared/live/context.js';
import { type DailyReport, dailyReportMarkdown, endOfDay } from '../../shared/live/end-of-day.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { generateSignals } from '../../shared/live/generate-signals.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { riskCheck } from '../../shared/live/risk-check.js';
import { stepSleeveFigures } from '../../shared/runtime/live-metrics.js';
import { startLiveStack } from '../helpers/live-stack.js';

// 2021-04-01 (a Thursday before Good Friday: the week's last session): the strategy enters MSFT at
// the open (see kill-switch.test.ts); New York is on daylight saving time (09:00 = 13:00Z).
const DAY = '2021-04-01';
const at = (hhmm: string) =>
  `${DAY}T${String(Number(hhmm.slice(0, 2)) + 4).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;

let stack: Awaited<ReturnType<typeof startLiveStack>>;
let report: DailyReport;
beforeAll(async () => {
  stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
  const steps: [string, (ctx: LiveContext, t: string) => Promise<unknown>][] = [
    ['09:00', marketOpenCheck],
    ['09:10', generateSignals],
    ['09:15', executeOrders],
    ['09:45', riskCheck],
    ['16:15', endOfDay],
  ];
  let last: unknown;
  for (const [time, step] of steps) {
    stack.alpaca.setTime(at(time));
    last = await step(stack.ctx, at(time));
  }
  if (last === null || typeof last !== 'object' || !('date' in last))
    throw new Error('expected a daily report');
  report = last as DailyReport;
}, 120_000);
afterAll(async () => {
  await stack.close();
});

describe('the sleeve dimension of the end-of-day report (a single-strategy config: one sleeve)', () => {
  it('has the config’s one sleeve with the account’s equity and P&L, its heat, orders and positions', async () => {
    const { ctx } = stack;
    expect(report.sleeves).toHaveLength(1);
    const [sleeve] = report.sleeves;
    const held = report.positions.filter((p) => p.qty !== 0);
    expect(held.length).toBeGreaterThan(0);
    const prices = new Map((await ctx.broker.getPositions()).map((p) => [p.symbol, p.currentPrice]));
    const risk = held.reduce(
      (sum, p) => sum + (p.stop === null ? 0 : Math.max(0, ((prices.get(p.symbol) ?? 0) - p.stop) * p.qty)),
      0,
    );
    const sent = (await ctx.store.listIntents(DAY)).filter((i) => i.brokerOrderId !== undefined).length;
    expect(sent).toBeGreaterThan(0);
    expect(sleeve).toEqual({
      id: ctx.config.name,
      equity: report.equity,
      dayPnl: report.dayPnl,
      heatPct: (risk / report.equity) * 100,
      orders: sent,
      positions: held.length,
    });
    expect(sleeve?.heatPct).toBeGreaterThan(0);
    // What the handler emits with the Sleeve dimension.
    expect(stepSleeveFigures('end-of-day', report)).toEqual(report.sleeves);
  });

  it('lists the sleeves in the daily and the weekly report text', () => {
    const daily = dailyReportMarkdown(report);
    expect(daily).toContain('*Sleeves* (1)');
    expect(daily).toMatch(
      new RegExp(
        `• ${stack.ctx.config.name}: equity \\$[\\d,.]+ \\(day [+-]\\$[\\d,.]+\\), heat \\d+\\.\\d\\d%, orders \\d+, positions 1`,
      ),
    );
    const weekly = stack.notifier.sent.find((n) => n.subject.startsWith('Weekly report'));
    expect(weekly?.text).toContain('*Sleeves* (1)');
    expect(weekly?.text).toMatch(
      new RegExp(`• ${stack.ctx.config.name}: closed trades \\d+ \\(\\d+ winners\\), P&L .*, equity \\$`),
    );
    expect(report.weekly?.sleeves).toEqual([
      expect.objectContaining({ id: stack.ctx.config.name, endEquity: report.equity }),
    ]);
  });
});
