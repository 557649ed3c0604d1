import fc from 'fast-check';
import { initialRiskState, type RiskState, riskRulesSchema } from '../../shared/core/risk/index.js';
import type { SizingSpec } from '../../shared/core/sizing/index.js';
import type { Intent } from '../../shared/core/strategies/types.js';
import type { CloseDecisionInput, HeldPosition, SymbolAtClose } from '../../shared/core/trading/decide.js';

/** Random inputs of `decideAtClose`: symbols held or not, every intent, sleeves, breakers near their limits. */

const ruleSets = [
  undefined,
  riskRulesSchema.parse({}),
  riskRulesSchema.parse({
    maxDrawdown: 0.05,
    drawdownCoolOffDays: 2,
    dailyLossLimit: 0.01,
    flattenOnDailyLoss: true,
    kellyMinTrades: 4,
    kellyWindow: 10,
    maxPortfolioHeat: 0.03,
    stops: { trailAtr: 1.5, breakEvenAtR: 1, timeStopDays: 5, takeProfitR: 2 },
  }),
  riskRulesSchema.parse({ volatilityCap: { targetVolatility: 0.15 } }),
];

const sizings: SizingSpec[] = [
  { mode: 'all-in' },
  { mode: 'fixed', qty: 120 },
  { mode: 'fraction', fraction: 0.3 },
  { mode: 'atr-risk', risk: 0.01 },
];

const price = fc.double({ min: 5, max: 500, noNaN: true });

const intentArb: fc.Arbitrary<Intent> = fc.oneof(
  fc.constant<Intent>({ action: 'hold' }),
  fc.constant<Intent>({ action: 'exit', reason: 'rule' }),
  fc.record({
    side: fc.constantFrom('long' as const, 'short' as const),
    stopOffset: fc.option(fc.double({ min: -0.2, max: 0.2, noNaN: true }), { nil: undefined }),
    target: fc.option(fc.double({ min: 1, max: 600, noNaN: true }), { nil: undefined }),
  }),
) as fc.Arbitrary<Intent>;

const positionArb: fc.Arbitrary<HeldPosition | undefined> = fc.option(
  fc.record({
    side: fc.constantFrom(1 as const, -1 as const),
    qty: fc.integer({ min: 1, max: 400 }),
    entryPrice: price,
    entryRef: price,
    initialRisk: fc.double({ min: 0.5, max: 20, noNaN: true }),
    stop: fc.option(price, { nil: undefined }),
    sessionsHeld: fc.integer({ min: 1, max: 10 }),
  }),
  { nil: undefined },
);

const rowArb = fc.record({
  close: price,
  atr: fc.oneof(fc.constant(Number.NaN), fc.double({ min: 0.1, max: 15, noNaN: true })),
  intent: intentArb,
  position: positionArb,
  hasBar: fc.boolean(),
  book: fc.option(fc.integer({ min: 0, max: 1 }), { nil: undefined }),
});

export const closeInputArb: fc.Arbitrary<CloseDecisionInput> = fc
  .record({
    rows: fc.array(rowArb, { minLength: 1, maxLength: 4 }),
    rulesIndex: fc.integer({ min: 0, max: ruleSets.length - 1 }),
    sizingIndex: fc.integer({ min: 0, max: sizings.length - 1 }),
    equity: fc.double({ min: 50_000, max: 150_000, noNaN: true }),
    power: fc.double({ min: 0, max: 150_000, noNaN: true }),
    pnls: fc.array(fc.double({ min: -2_000, max: 2_000, noNaN: true }), { maxLength: 30 }),
    sleeves: fc.boolean(),
    correlated: fc.boolean(),
    newDay: fc.boolean(),
    halted: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
    dayStart: fc.double({ min: 50_000, max: 150_000, noNaN: true }),
    highWaterMark: fc.double({ min: 100_000, max: 160_000, noNaN: true }),
    fractional: fc.boolean(),
  })
  .map((d) => {
    const rules = ruleSets[d.rulesIndex];
    const symbols: SymbolAtClose[] = d.rows.map((r, i) => {
      let intent = r.intent;
      if ('stopOffset' in intent) {
        const drawn = intent as unknown as { side: 'long' | 'short'; stopOffset?: number; target?: number };
        intent = {
          action: 'enter',
          side: drawn.side,
          reason: 'rule',
          ...(drawn.stopOffset === undefined ? {} : { stopLoss: r.close * (1 + drawn.stopOffset) }),
          ...(drawn.target === undefined ? {} : { takeProfit: drawn.target }),
        };
      }
      return {
        symbol: `S${i}`,
        hasBar: r.hasBar,
        close: r.close,
        atr: r.atr,
        intent,
        position: r.position,
        ...(d.sleeves && r.book !== undefined ? { book: r.book } : {}),
      };
    });
    const riskState: RiskState = {
      ...initialRiskState(d.highWaterMark),
      day: d.newDay ? '2024-03-04' : '2024-03-05',
      dayStartEquity: d.dayStart,
      lastEquity: d.dayStart,
      drawdownHalt: d.halted === undefined ? null : { since: 0, day: '2024-03-01', sessions: d.halted },
    };
    const input: CloseDecisionInput = {
      time: Date.UTC(2024, 2, 5),
      day: '2024-03-05',
      equity: d.equity,
      buyingPower: d.power,
      symbols,
      closedPnls: d.pnls,
      riskState,
      options: {
        sizing: sizings[d.sizingIndex] as SizingSpec,
        fractional: d.fractional,
        cashBuffer: 0.02,
        maxPositionFraction: 0.25,
        ...(rules === undefined ? {} : { risk: rules }),
      },
      ...(d.sleeves
        ? {
            books: [
              { equity: d.equity / 2, buyingPower: d.power / 2, closedPnls: d.pnls.slice(0, 12) },
              {
                equity: d.equity / 2,
                buyingPower: d.power / 3,
                closedPnls: d.pnls.slice(12),
                sizing: { mode: 'fraction', fraction: 0.5 },
                risk: { riskPerTrade: 0.01 },
              },
            ],
          }
        : {}),
      ...(d.correlated ? { correlation: (a: number, b: number) => ((a + b) % 3) * 0.45 - 0.1 } : {}),
      ...(rules?.volatilityCap === undefined
        ? {}
        : { volatility: (a: number) => (a === 0 ? Number.NaN : 0.3) }),
      drawdownAutoReset: { sessions: 3, by: 'backtest cool-off' },
    };
    return input;
  });
