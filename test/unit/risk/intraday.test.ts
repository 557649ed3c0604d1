import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { intradayStop } from '../../../shared/core/risk/intraday.js';
import { stopRulesSchema } from '../../../shared/core/risk/rules.js';
import { manageStop, stopCrossed } from '../../../shared/core/risk/stops.js';

const rules = stopRulesSchema.parse({ atrPeriod: 14, initialAtr: 2, trailAtr: 3, breakEvenAtR: 1 });
const long = { side: 1 as const, entryPrice: 100, initialRisk: 4, stop: 96, sessionsHeld: 1 };

describe('intradayStop (the stream decision on a live price)', () => {
  it('exits at or through the stop, with the risk check test', () => {
    expect(intradayStop(long, 96, 1, rules, 0.25)).toEqual({ action: 'exit', stop: 96 });
    expect(intradayStop(long, 95.5, 1, rules, 0.25).action).toBe('exit');
    expect(intradayStop({ ...long, side: -1, stop: 104 }, 104.01, 1, rules, 0.25).action).toBe('exit');
    expect(intradayStop(long, 96.01, 1, rules, 0.25).action).not.toBe('exit');
  });

  it('ratchets the trailing stop on a live high, by the daily rules, only past the minimum step', () => {
    // 110 - 3 x 1 = 107: tighter than 96 by 11.
    expect(intradayStop(long, 110, 1, rules, 0.25)).toEqual({ action: 'ratchet', stop: 107 });
    expect(intradayStop({ ...long, stop: 106.9 }, 110, 1, rules, 0.25)).toEqual({
      action: 'hold',
      stop: 106.9,
    });
    expect(manageStop(long, 110, 1, rules).stop).toBe(107);
  });

  it('never loosens a stop, and exits exactly when the price crosses it', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1 as const, -1 as const),
        fc.double({ min: 1, max: 1000, noNaN: true }),
        fc.double({ min: 0.5, max: 1.5, noNaN: true }),
        fc.double({ min: 0, max: 50, noNaN: true }),
        fc.double({ min: 0, max: 5, noNaN: true }),
        (side, entry, stopRatio, atr, step) => {
          const stop = side === 1 ? entry * Math.min(stopRatio, 0.99) : entry * Math.max(stopRatio, 1.01);
          const position = {
            side,
            entryPrice: entry,
            initialRisk: Math.abs(entry - stop),
            stop,
            sessionsHeld: 1,
          };
          for (const price of [stop, entry, entry * 1.2, entry * 0.8]) {
            const decision = intradayStop(position, price, atr, rules, step);
            expect(decision.action === 'exit').toBe(stopCrossed(side, price, stop));
            expect(side * (decision.stop - stop)).toBeGreaterThanOrEqual(0);
            if (decision.action === 'ratchet')
              expect(side * (decision.stop - stop)).toBeGreaterThanOrEqual(step);
          }
        },
      ),
    );
  });
});
