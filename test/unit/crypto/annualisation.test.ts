import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadBarsCsv } from '../../../shared/adapters/fs/bars.js';
import { backtestCommand } from '../../../shared/cli/backtest.js';
import { computeMetrics } from '../../../shared/core/metrics/index.js';
import { deflatedSharpe } from '../../../shared/core/research/deflated-sharpe.js';
import {
  annualizedVolatility,
  defaultRiskRules,
  RollingVolatility,
  sizeEntryWithRisk,
} from '../../../shared/core/risk/index.js';

const DAY = 86_400_000;

/** A year of daily equity points with alternating returns, starting 2024-01-01 UTC. */
function curve(days: number) {
  const time = new Float64Array(days);
  const equity = new Float64Array(days);
  let e = 100_000;
  for (let i = 0; i < days; i++) {
    time[i] = Date.UTC(2024, 0, 1) + i * DAY;
    e *= i % 3 === 0 ? 0.99 : 1.012;
    equity[i] = e;
  }
  return { time, equity, inMarket: new Uint8Array(days).fill(1) };
}

describe('annualisation by asset class', () => {
  it('scales Sharpe, Sortino and volatility by √(365/252); CAGR is calendar time, the same for both', () => {
    const c = curve(366);
    const base = { ...c, initialEquity: 100_000, tradePnls: [], buyHoldReturnPct: 0 };
    const equity = computeMetrics(base);
    const explicit = computeMetrics({ ...base, periodsPerYear: 252 });
    const crypto = computeMetrics({ ...base, periodsPerYear: 365 });
    expect(explicit).toEqual(equity); // 252 is the default: equity figures unchanged
    const ratio = Math.sqrt(365 / 252);
    expect(crypto.sharpe as number).toBeCloseTo((equity.sharpe as number) * ratio, 10);
    expect(crypto.sortino as number).toBeCloseTo((equity.sortino as number) * ratio, 10);
    expect(crypto.volatilityPct as number).toBeCloseTo((equity.volatilityPct as number) * ratio, 10);
    expect(crypto.cagrPct).toBe(equity.cagrPct);
    // 366 UTC days from 2024-01-01: one leap year of calendar time, so CAGR ≈ the return over it.
    expect(crypto.cagrPct as number).toBeCloseTo(
      ((1 + crypto.returnPct / 100) ** (365.25 / 366) - 1) * 100,
      8,
    );
    // Risk-free rate: the per-period rate follows the periods too.
    const rf = computeMetrics({ ...base, periodsPerYear: 365, riskFreeRate: 0.04 });
    expect(rf.sharpe as number).toBeLessThan(crypto.sharpe as number);
  });

  it('the deflated Sharpe ratio works on per-period returns, whatever the annualisation', () => {
    // The walk-forward divides annualised Sharpe ratios by √periodsPerYear before the variance.
    const returns = Array.from({ length: 400 }, (_, i) => (i % 3 === 0 ? -0.01 : 0.012));
    const a = deflatedSharpe(returns, 10, 0.001);
    expect(a).not.toBeNull();
    expect((a as { sharpe: number }).sharpe).toBeGreaterThan(0);
  });

  it('volatility: the rolling and the closes-based estimates agree and use the periods a year', () => {
    const closes = [100, 102, 99, 103, 104, 101, 105, 107, 104, 108, 110];
    const window = 10;
    const rolling = new RollingVolatility(1, window, 365);
    rolling.push([Number.NaN]);
    for (let i = 1; i < closes.length; i++) {
      expect(rolling.volatility(0)).toBeNaN();
      rolling.push([(closes[i] as number) / (closes[i - 1] as number) - 1]);
    }
    const direct = annualizedVolatility(closes, window, 365);
    expect(rolling.volatility(0)).toBeCloseTo(direct, 12);
    expect(annualizedVolatility(closes, window, 252)).toBeCloseTo(direct * Math.sqrt(252 / 365), 12);
    expect(annualizedVolatility(closes.slice(0, 5), window, 365)).toBeNaN();
  });

  it('the volatility-scaled cap cuts the position to target / volatility of equity, and waits for a volatility', () => {
    const rules = {
      ...defaultRiskRules(),
      maxPositionFraction: 0.25,
      volatilityCap: { targetVolatility: 0.1, window: 30 },
    };
    const input = {
      requestedQty: Number.NaN,
      side: 1 as const,
      price: 100,
      stop: 99,
      equity: 100_000,
      openHeat: 0,
      kelly: null,
      correlation: null,
      fractional: true,
    };
    // Volatility 80%: cap 0.1 / 0.8 = 12.5% of equity = 125 coins (the risk budget alone allows 250 → position cap).
    const capped = sizeEntryWithRisk({ ...input, annualVolatility: 0.8 }, rules);
    expect(capped.qty).toBe(125);
    expect(capped.reductions.at(-1)).toMatch(/volatility cap 10% \/ volatility 80% = 12.5% of equity/);
    // Volatility 20%: 0.1 / 0.2 = 50%, above the 25% position cap, which applies.
    expect(sizeEntryWithRisk({ ...input, annualVolatility: 0.2 }, rules).qty).toBe(250);
    expect(sizeEntryWithRisk({ ...input }, rules).refused).toMatch(
      /volatility cap: the 30-day volatility is still warming up/,
    );
    // Without the rule nothing changes.
    expect(sizeEntryWithRisk({ ...input, annualVolatility: 0.8 }, defaultRiskRules()).qty).toBe(200);
  });
});

describe('the crypto backtest of config/crypto-strategy.yaml', () => {
  it('runs its sleeves over the bundled data, 7 days a week, annualised over 365 days, with 10+ trades', async () => {
    let out = '';
    const stdout = new Writable({
      write(chunk, _e, done) {
        out += String(chunk);
        done();
      },
    });
    const stderr = new Writable({ write: (_c, _e, done) => done() });
    const code = await backtestCommand(['--config', 'config/crypto-strategy.yaml', '--format', 'json'], {
      stdout,
      stderr,
    });
    expect(code).toBe(0);
    const doc = JSON.parse(out);
    expect(doc.periodsPerYear).toBe(365);
    expect(doc.symbols).toEqual(['BTC-USD', 'ETH-USD', 'SOL-USD']);
    expect(doc.metrics.trades).toBeGreaterThanOrEqual(10);
    // The sleeves of the shipped config each trade.
    expect(doc.sleeves.map((sleeve: { id: string }) => sleeve.id)).toEqual([
      'trend',
      'breakout',
      'bollinger',
    ]);
    for (const id of ['trend', 'breakout', 'bollinger'])
      expect(doc.trades.some((t: { sleeve: string }) => t.sleeve === id)).toBe(true);
    // Every UTC day is on the equity curve: no weekend gaps.
    const times = doc.equity.map((p: { time: string }) => Date.parse(`${p.time}T00:00:00Z`));
    for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1]).toBe(DAY);
    const weekdays = new Set(
      doc.trades.map((t: { entryTime: string }) => new Date(`${t.entryTime}T00:00:00Z`).getUTCDay()),
    );
    expect(weekdays.has(0) && weekdays.has(6)).toBe(true);
    // Fractional coins, and the taker fee (60 bps) charged on each fill.
    const first = doc.trades[0];
    expect(Number.isInteger(first.qty)).toBe(false);
    expect(first.commission).toBeGreaterThan(0);
    // The loader read `Vol` as the volume (24 h USD volume).
    const btc = loadBarsCsv('data/crypto/BTC-USD.csv');
    expect(btc.volume[0]).toBe(21056800);
    expect(btc.time.length).toBe(4136);
    expect((btc.time[1] as number) - (btc.time[0] as number)).toBe(DAY);
  });
});
