import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfig, singleStrategy } from '../../../shared/core/config/schema.js';
import type { SessionRecord } from '../../../shared/core/ports/state-store.js';
import { UnknownStateError } from '../../../shared/live/context.js';
import { positionConflict } from '../../../shared/live/positions.js';
import { orderWindowClosed } from '../../../shared/live/submit.js';

const config = parseConfig(readFileSync('config/equity-strategy.yaml', 'utf8'), 'cfg');
const longOnly = { config };
const longShort = {
  config: { ...config, strategy: { ...singleStrategy(config), direction: 'long-short' as const } },
};

describe('positionConflict: which broker positions are an unknown state', () => {
  it('a long-only stage never holds a short, whatever the ledger says', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.option(fc.integer({ min: -1_000_000, max: 1_000_000 }), { nil: undefined }),
        (shares, recorded) => {
          const conflict = positionConflict(
            longOnly,
            { symbol: 'SPY', qty: -shares },
            recorded === undefined ? undefined : { qty: recorded },
          );
          expect(conflict).toBeInstanceOf(UnknownStateError);
          expect(conflict?.message).toMatch(/^SPY: the broker reports a short/);
        },
      ),
    );
  });

  it('a long agrees with a long or no record, and conflicts with a short record', () => {
    expect(positionConflict(longOnly, { symbol: 'SPY', qty: 53 }, { qty: 53 })).toBeNull();
    expect(positionConflict(longOnly, { symbol: 'SPY', qty: 53 }, { qty: 40 })).toBeNull();
    expect(positionConflict(longOnly, { symbol: 'SPY', qty: 53 }, undefined)).toBeNull();
    expect(positionConflict(longOnly, { symbol: 'SPY', qty: 53 }, { qty: 0 })).toBeNull();
    expect(positionConflict(longShort, { symbol: 'SPY', qty: 53 }, { qty: -53 })?.message).toMatch(
      /sides disagree/,
    );
    expect(positionConflict(longShort, { symbol: 'SPY', qty: -53 }, { qty: -53 })).toBeNull();
  });
});

describe('orderWindowClosed: when a claimed intent the broker never saw is final', () => {
  const session: SessionRecord = {
    date: '2021-03-18',
    isOpen: true,
    openAt: '2021-03-18T13:30:00.000Z',
    closeAt: '2021-03-18T20:00:00.000Z',
    earlyClose: false,
    checkedAt: '2021-03-18T13:00:00.000Z',
  };
  const opg = { date: '2021-03-18', timeInForce: 'opg' as const };
  const gtc = { date: '2021-03-18', timeInForce: 'gtc' as const };

  it('a market-on-open order: at the 09:28 New York cutoff', () => {
    expect(orderWindowClosed({}, opg, session, '2021-03-18T13:27:59.000Z')).toBe(false);
    expect(orderWindowClosed({}, opg, session, '2021-03-18T13:28:00.000Z')).toBe(true);
  });

  it('any other order: at its session close, or once its day is past', () => {
    expect(orderWindowClosed({}, gtc, session, '2021-03-18T19:59:00.000Z')).toBe(false);
    expect(orderWindowClosed({}, gtc, session, '2021-03-18T20:00:00.000Z')).toBe(true);
    expect(
      orderWindowClosed(
        {},
        gtc,
        { ...session, closeAt: '2021-03-18T17:00:00.000Z' },
        '2021-03-18T17:00:00.000Z',
      ),
    ).toBe(true);
    expect(orderWindowClosed({}, gtc, undefined, '2021-03-19T13:00:00.000Z')).toBe(true);
    expect(orderWindowClosed({}, gtc, undefined, '2021-03-18T19:00:00.000Z')).toBe(false);
  });
});
