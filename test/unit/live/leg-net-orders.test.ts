import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IntentRecord } from '../../../shared/core/ports/state-store.js';
import { legNetOrders } from '../../../shared/live/sleeves.js';

const LEGS = ['leg-rsi-SPY-20210406-exit', 'leg-trend-SPY-20210406-entry', 'leg-breakout-SPY-20210406-entry'];

const intent = (id: string, createdAt: string, extra: Partial<IntentRecord>): IntentRecord => ({
  clientOrderId: id,
  date: '2021-04-06',
  strategy: 'multi-strategy',
  symbol: 'SPY',
  purpose: 'exit',
  side: 'sell',
  qty: 5,
  type: 'market',
  timeInForce: 'opg',
  referencePrice: 100,
  status: 'recorded',
  filledQty: 0,
  configHash: 'h',
  gitCommit: 'c',
  createdAt,
  updatedAt: createdAt,
  ...extra,
});

describe('the net order each leg belongs to', () => {
  it('is the first net intent recorded that names it (then the lowest id), whatever the listing order', () => {
    const net = fc.record({
      id: fc.constantFrom('qs-a-SPY-20210406-exit', 'qs-b-SPY-20210406-entry', 'qs-c-SPY-20210406-exit'),
      minute: fc.integer({ min: 10, max: 14 }),
      legIds: fc.subarray(LEGS),
    });
    const listed = (nets: readonly { id: string; minute: number; legIds: string[] }[]) => [
      ...nets.map((n) =>
        intent(n.id, `2021-04-06T13:${n.minute}:00.000Z`, { legIds: n.legIds, sleeve: 'rsi+trend' }),
      ),
      // A leg itself never owns legs, even with a `legIds` field.
      intent(LEGS[0] as string, '2021-04-06T13:00:00.000Z', { leg: true, legIds: [LEGS[1] as string] }),
    ];
    const scenario = fc
      .uniqueArray(net, { selector: (n) => n.id })
      .chain((nets) =>
        fc.tuple(
          fc.constant(nets),
          fc.shuffledSubarray(listed(nets), { minLength: nets.length + 1, maxLength: nets.length + 1 }),
        ),
      );
    fc.assert(
      fc.property(scenario, ([nets, shuffled]) => {
        const owners = legNetOrders(shuffled);
        for (const leg of LEGS) {
          const naming = nets
            .filter((n) => n.legIds.includes(leg))
            .sort((a, b) => a.minute - b.minute || a.id.localeCompare(b.id));
          expect(owners.get(leg)).toBe(naming[0]?.id);
        }
        expect(owners.size).toBe(new Set(nets.flatMap((n) => n.legIds)).size);
      }),
    );
  });
});
