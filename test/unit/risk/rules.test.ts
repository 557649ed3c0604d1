import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  entryBlock,
  initialRiskState,
  KellySums,
  kellyEstimate,
  manageStop,
  observeEquity,
  portfolioHeat,
  RollingCorrelation,
  resetDrawdown,
  riskRulesSchema,
  setKillSwitch,
  sizeEntryWithRisk,
} from '../../../shared/core/risk/index.js';

const rules = riskRulesSchema.parse({});
const T = (day: number) => Date.UTC(2024, 0, day);

describe('per-trade risk and the caps', () => {
  const base = {
    requestedQty: Number.NaN,
    side: 1 as const,
    price: 50,
    stop: 47,
    equity: 100_000,
    openHeat: 0,
    kelly: null,
    correlation: null,
    fractional: false,
  };

  it('sizes from the risk budget over the distance to the stop', () => {
    // 2% × 100 000 / 3 = 666.67 → 666 shares; value 33 300 > the 20% cap (20 000) → 400 shares
    const sized = sizeEntryWithRisk({ ...base, stop: 45 }, rules);
    // 2% × 100 000 / 5 = 400 shares, value 20 000: exactly the cap
    expect(sized).toMatchObject({ qty: 400, refused: null, reductions: [] });
    const capped = sizeEntryWithRisk(base, rules);
    expect(capped.qty).toBe(400);
    expect(capped.reductions).toEqual(['position cap 20% of equity']);
  });

  it('refuses an entry without a stop on the losing side', () => {
    expect(sizeEntryWithRisk({ ...base, stop: Number.NaN }, rules).refused).toMatch(/no valid stop/);
    expect(sizeEntryWithRisk({ ...base, stop: 51 }, rules).refused).toMatch(/no valid stop/);
    expect(sizeEntryWithRisk({ ...base, side: -1, stop: 49 }, rules).refused).toMatch(/no valid stop/);
  });

  it('scales an entry down to the heat left under the cap, and refuses when none is left', () => {
    // heat cap 10 000; 8 500 open → 1 500 of room / $5 per share = 300 shares
    const scaled = sizeEntryWithRisk({ ...base, stop: 45, openHeat: 8_500 }, rules);
    expect(scaled.qty).toBe(300);
    expect(scaled.reductions).toEqual(['portfolio heat cap 10%']);
    expect(scaled.heat).toBe(1_500);
    const refused = sizeEntryWithRisk({ ...base, stop: 45, openHeat: 10_000 }, rules);
    expect(refused.refused).toMatch(/portfolio heat 10% leaves no room under the 10% cap/);
  });

  it("takes the heat cap as a fraction of heatEquity when given (a sleeve's account), else of equity", () => {
    // A sleeve's 20 000 of equity: 2% / $5 = 80 shares, under its 20% cap (4 000 / $50 = 80).
    const sleeve = { ...base, stop: 45, equity: 20_000 };
    // The account's 100 000: cap 10 000, 9 800 open → 200 of room / $5 = 40 shares.
    const account = sizeEntryWithRisk({ ...sleeve, heatEquity: 100_000, openHeat: 9_800 }, rules);
    expect(account.qty).toBe(40);
    expect(account.reductions).toEqual(['portfolio heat cap 10%']);
    // Without it, the sleeve's own 20 000: cap 2 000, less than the heat open: refused.
    const own = sizeEntryWithRisk({ ...sleeve, openHeat: 9_800 }, rules);
    expect(own.refused).toMatch(/leaves no room/);
    expect(sizeEntryWithRisk({ ...sleeve, heatEquity: undefined, openHeat: 9_800 }, rules)).toEqual(own);
  });

  it('uses quarter Kelly as a further cap, never to lever up', () => {
    // Kelly 0.04 → 0.25 × 0.04 = 1% < 2%: 1% × 100 000 / 5 = 200 shares
    const kelly = sizeEntryWithRisk({ ...base, stop: 45, kelly: 0.04 }, rules);
    expect(kelly.qty).toBe(200);
    expect(kelly.reductions[0]).toMatch(/^Kelly cap/);
    // a large Kelly does not raise the 2% budget
    expect(sizeEntryWithRisk({ ...base, stop: 45, kelly: 0.9 }, rules).qty).toBe(400);
    // no edge: the floor (0.25%) keeps a small size so the estimate can recover
    expect(sizeEntryWithRisk({ ...base, stop: 45, kelly: -0.3 }, rules).qty).toBe(50);
  });

  it('cuts the budget of an entry strongly correlated with an open position', () => {
    const correlated = sizeEntryWithRisk(
      { ...base, stop: 45, correlation: { symbol: 'QQQ', rho: 0.92 } },
      rules,
    );
    expect(correlated.qty).toBe(200);
    expect(correlated.reductions).toEqual(['correlated with QQQ (ρ = 0.92): risk × 0.5']);
    expect(
      sizeEntryWithRisk({ ...base, stop: 45, correlation: { symbol: 'GLD', rho: 0.2 } }, rules).qty,
    ).toBe(400);
  });

  it('counts heat from the entry reference to the current stop, never below zero', () => {
    expect(
      portfolioHeat([
        { side: 1, qty: 100, entryRef: 50, stop: 45 }, // 500
        { side: -1, qty: 10, entryRef: 200, stop: 210 }, // 100
        { side: 1, qty: 100, entryRef: 50, stop: 52 }, // trailed past the entry: 0
      ]),
    ).toBe(600);
  });
});

describe('the rules schema', () => {
  it('takes a correlation window of 5 to 10,000 sessions and names the field otherwise', () => {
    expect(riskRulesSchema.parse({ correlation: { window: 10_000 } }).correlation.window).toBe(10_000);
    for (const window of [4, 10_001, 1e12]) {
      const parsed = riskRulesSchema.safeParse({ correlation: { window } });
      expect(parsed.success).toBe(false);
      expect(parsed.error?.issues[0]?.path).toEqual(['correlation', 'window']);
    }
  });
});

describe('Kelly estimate', () => {
  it('W − (1 − W) / R over the rolling window, after the minimum sample', () => {
    // 3 wins of 200, 2 losses of 100: W = 0.6, R = 2 → 0.6 − 0.4 / 2 = 0.4
    expect(kellyEstimate([200, -100, 200, -100, 200], 50, 5)).toBeCloseTo(0.4, 12);
    expect(kellyEstimate([200, -100, 200, -100], 50, 5)).toBeNull();
    // the window keeps the last 5
    expect(kellyEstimate([-500, -500, 200, -100, 200, -100, 200], 5, 5)).toBeCloseTo(0.4, 12);
    expect(kellyEstimate([10, 20, 30], 10, 3)).toBe(1);
  });

  it('with running sums kept in step (KellySums), the same double at every length', () => {
    const pnl = fc.oneof(
      fc.constant(0),
      fc.double({ min: -1e6, max: 1e6, noNaN: true }),
      fc.integer({ min: -5000, max: 5000 }).map((c) => c / 100),
    );
    fc.assert(
      fc.property(
        fc.array(pnl, { maxLength: 80 }),
        fc.integer({ min: 2, max: 60 }),
        fc.integer({ min: 2, max: 60 }),
        (pnls, window, min) => {
          const minTrades = Math.min(min, window);
          const sums = new KellySums();
          const list: number[] = [];
          for (const x of pnls) {
            list.push(x);
            sums.add(x);
            expect(
              Object.is(kellyEstimate(list, window, minTrades, sums), kellyEstimate(list, window, minTrades)),
            ).toBe(true);
          }
          sums.reset();
          expect(sums.count).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('sums out of step with the list are not used', () => {
    const sums = new KellySums();
    sums.add(100);
    sums.add(100);
    // The list has a loss the sums never saw: its own loop gives the estimate.
    expect(kellyEstimate([100, -100, 100], 50, 2, sums)).toBe(kellyEstimate([100, -100, 100], 50, 2));
  });
});

describe('stop management from daily closes', () => {
  const stops = riskRulesSchema.parse({ stops: { trailAtr: 3, breakEvenAtR: 1, timeStopDays: 10 } }).stops;
  const position = { side: 1 as const, entryPrice: 100, initialRisk: 4, stop: 96, sessionsHeld: 1 };

  it('trails k × ATR below the close and only ratchets up', () => {
    expect(manageStop(position, 102, 1, stops).stop).toBe(99); // 102 − 3 = 99 > 96
    expect(manageStop({ ...position, stop: 99 }, 100, 1, stops).stop).toBe(99); // 97 would loosen: kept
  });

  it('moves to break-even once the close is 1R in profit', () => {
    expect(manageStop(position, 104, 3, stops).stop).toBe(100); // trail 95 < 96; +4 = 1R → entry
    expect(manageStop(position, 103.9, 3, stops).stop).toBe(96);
  });

  it('exits after the time stop', () => {
    expect(manageStop({ ...position, sessionsHeld: 10 }, 100, 1, stops).exit).toMatch(
      /time stop: 10 sessions/,
    );
    expect(manageStop({ ...position, sessionsHeld: 9 }, 100, 1, stops).exit).toBeNull();
  });

  it('mirrors for shorts', () => {
    const short = { side: -1 as const, entryPrice: 100, initialRisk: 4, stop: 104, sessionsHeld: 1 };
    expect(manageStop(short, 98, 1, stops).stop).toBe(101);
    expect(manageStop(short, 96, 5, stops).stop).toBe(100);
  });
});

describe('circuit breakers', () => {
  it('daily loss: from the day start equity; blocks entries for the rest of that day only', () => {
    let state = initialRiskState(100_000);
    state = observeEquity(state, rules, T(2), '2024-01-02', 100_000).state;
    const trip = observeEquity(state, rules, T(3), '2024-01-03', 94_999);
    expect(trip.events).toEqual([
      expect.objectContaining({ breaker: 'daily-loss', action: 'trip', reason: 'daily loss 5% ≥ limit 5%' }),
    ]);
    expect(entryBlock(trip.state, '2024-01-03')).toMatch(/daily loss breaker tripped today/);
    // the next day starts from the last equity and is free again
    const next = observeEquity(trip.state, rules, T(4), '2024-01-04', 94_000);
    expect(next.events).toEqual([]);
    expect(next.state.dayStartEquity).toBe(94_999);
    expect(entryBlock(next.state, '2024-01-04')).toBeNull();
  });

  it('drawdown: from the high-water mark; holds until an explicit reset, which sets the mark to the equity', () => {
    let state = initialRiskState(100_000);
    state = observeEquity(state, rules, T(2), '2024-01-02', 120_000).state;
    state = observeEquity(state, rules, T(3), '2024-01-03', 110_000).state;
    const trip = observeEquity(state, rules, T(4), '2024-01-04', 101_999);
    expect(trip.events.map((e) => e.breaker)).toEqual(['daily-loss', 'drawdown']);
    expect(trip.events[1]?.figures).toMatchObject({ highWaterMark: 120_000, equity: 101_999 });
    state = observeEquity(trip.state, rules, T(5), '2024-01-05', 125_000).state;
    expect(entryBlock(state, '2024-01-05')).toMatch(/drawdown breaker tripped on 2024-01-04, awaiting reset/);
    expect(state.drawdownHalt?.sessions).toBe(1);
    const reset = resetDrawdown(state, T(5), 125_000, 'ops@example', 'reviewed');
    expect(reset.events[0]).toMatchObject({ breaker: 'drawdown', action: 'reset', by: 'ops@example' });
    expect(reset.state.highWaterMark).toBe(125_000);
    expect(entryBlock(reset.state, '2024-01-05')).toBeNull();
  });

  it('kill switch: a manual halt and resume, recorded', () => {
    const on = setKillSwitch(initialRiskState(1), true, T(2), 'alice', 'broker incident');
    expect(entryBlock(on.state, '2024-01-02')).toBe('kill switch on (broker incident)');
    const off = setKillSwitch(on.state, false, T(3), 'bob', 'resolved');
    expect(off.events[0]).toMatchObject({
      breaker: 'kill-switch',
      action: 'reset',
      by: 'bob',
      reason: 'resolved',
    });
    expect(entryBlock(off.state, '2024-01-03')).toBeNull();
  });

  it('state survives serialisation', () => {
    const state = observeEquity(initialRiskState(100), rules, T(2), '2024-01-02', 80).state;
    expect(JSON.parse(JSON.stringify(state))).toEqual(state);
  });
});

describe('rolling correlation', () => {
  it('is Pearson over the window, with NaN until half a window overlaps', () => {
    const c = new RollingCorrelation(3, 6);
    c.push([0.01, 0.02, -0.01]);
    c.push([-0.02, -0.04, 0.02]);
    expect(c.correlation(0, 1)).toBeNaN();
    c.push([0.03, 0.06, -0.03]);
    c.push([0.0, 0.0, 0.01]);
    expect(c.correlation(0, 1)).toBeCloseTo(1, 12);
    expect(c.correlation(0, 2)).toBeLessThan(-0.8);
    expect(c.matrix()[1]?.[1]).toBe(1);
  });
});
