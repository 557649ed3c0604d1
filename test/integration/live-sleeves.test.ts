import { afterEach, describe, expect, it } from 'vitest';
import { endOfDay } from '../../shared/live/end-of-day.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { generateSignals } from '../../shared/live/generate-signals.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { riskCheck } from '../../shared/live/risk-check.js';
import { startLiveStack } from '../helpers/live-stack.js';

const at = (day: string, hhmm: string, offset = 4) =>
  `${day}T${String(Number(hhmm.slice(0, 2)) + offset).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;

let stack: Awaited<ReturnType<typeof startLiveStack>> | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

describe('smoke', () => {
  it('runs a sleeves day', async () => {
    const DAY = '2021-03-18';
    stack = await startLiveStack({ startTime: at(DAY, '08:00'), config: 'config/multi-strategy.yaml' });
    const { ctx } = stack;
    await marketOpenCheck(ctx, at(DAY, '09:00'));
    const signals = await generateSignals(ctx, at(DAY, '09:10'));
    console.log(signals.intents.map((i) => `${i.clientOrderId} ${i.side} ${i.qty}`));
    console.log(JSON.stringify(signals.sleeves?.state.allocation.weights));
    const exec = await executeOrders(ctx, at(DAY, '09:15'));
    console.log(JSON.stringify(exec));
    stack.alpaca.setTime(at(DAY, '10:00'));
    const rc = await riskCheck(ctx, at(DAY, '10:00'));
    console.log(JSON.stringify(rc));
    stack.alpaca.setTime(at(DAY, '16:15'));
    const eod = await endOfDay(ctx, at(DAY, '16:15'));
    console.log(JSON.stringify('date' in eod ? { sleeves: eod.sleeves, drift: eod.drift, pos: eod.positions } : eod));
  });
});
