/**
 * The CPU time of the decision at a close where the strategy enters, per call, as the fast engines
 * run it (`breakerStep` and `scalarEntryBlock` on the breakers' scalars, then
 * `CloseDecider.decideAfterBreakers`, one reused decider, no explanations) and as the reference
 * engine and the live functions run it (`decideAtClose` on a `RiskState`, which `observeEquity`
 * steps): `npx tsx bench/decide-cpu.ts [calls] [passes]`. One symbol, flat, the strategy entering
 * long with the risk rules' default stop, the bench's sizing and risk rules, a Kelly window full
 * of trades; a new day at each close, equity wandering. Prints a checksum of the quantities (the
 * two paths must agree). CPU time (`process.cpuUsage`): the development machine is shared.
 */
import {
  BACKTEST_COOL_OFF,
  backtestBreakers,
  breakerStep,
  DAILY_LOSS_TRIP,
  defaultRiskRules,
  initialRiskState,
  KellySums,
  type RiskState,
  scalarEntryBlock,
} from '../shared/core/risk/index.js';
import type { Intent } from '../shared/core/strategies/types.js';
import { CloseDecider, type CloseDecisionInput, decideAtClose } from '../shared/core/trading/decide.js';
import type { Writable } from '../shared/core/writable.js';
import { BENCH_OPTIONS } from './stats.js';

const calls = Number(process.argv[2] ?? 1_000_000);
const passes = Number(process.argv[3] ?? 3);
const rules = defaultRiskRules();
const options = { ...BENCH_OPTIONS, risk: rules };
const DAYS = 4096;
const DAY_MS = 86_400_000;
const firstDay = 19_000;
const dayNumber = new Int32Array(DAYS);
const time = new Float64Array(DAYS);
const dayText: string[] = [];
for (let i = 0; i < DAYS; i++) {
  dayNumber[i] = firstDay + i;
  time[i] = (firstDay + i) * DAY_MS + 14 * 3_600_000;
  dayText.push(new Date(time[i] as number).toISOString().slice(0, 10));
}
const where = {
  day: (at: number) => dayText[at] as string,
  key: (at: number) => dayNumber[at] as number,
  time: (at: number) => time[at] as number,
};
const closedPnls: number[] = [];
const sums = new KellySums();
for (let i = 0; i < 30; i++) {
  const pnl = ((i * 7919) % 13) * 100 - 500;
  closedPnls.push(pnl);
  sums.add(pnl);
}
const intent: Intent = { action: 'enter', side: 'long', reason: 'bench' };
const row = { symbol: 'SPY', hasBar: true, close: 0, atr: 0, intent, position: undefined };
// The closes' equity and price, made before the timing (a cycle of 4,096 like the days).
const equities = new Float64Array(DAYS);
const closes = new Float64Array(DAYS);
for (let i = 0; i < DAYS; i++) {
  equities[i] = 100_000 + 3_000 * Math.sin(i / 50);
  closes[i] = 400 + 20 * Math.sin(i / 7);
}

/** The fast engines' path. */
function scalars(): number {
  const bk = backtestBreakers(rules, 100_000);
  const decider = new CloseDecider(true);
  const input = {
    time: 0,
    equity: 0,
    buyingPower: 0,
    symbols: [row],
    closedPnls,
    closedPnlSums: sums,
    options,
    explain: false,
  };
  let sum = 0;
  for (let i = 0; i < calls; i++) {
    const at = i % DAYS;
    const equity = equities[at] as number;
    row.close = closes[at] as number;
    row.atr = 6 + (i % 5);
    input.time = time[at] as number;
    input.equity = equity;
    input.buyingPower = equity;
    const tripped = (breakerStep(bk, dayNumber[at] as number, at, equity) & DAILY_LOSS_TRIP) !== 0;
    const blocked = scalarEntryBlock(bk, at, where, null, input.explain);
    const decisions = decider.decideAfterBreakers(input, blocked, tripped);
    for (let e = 0; e < decisions.entries.length; e++) sum += (decisions.entries[e] as { qty: number }).qty;
  }
  return sum;
}

/** The reference engine's and the live functions' path. */
function reference(): number {
  let state: RiskState = initialRiskState(100_000);
  const input: Writable<CloseDecisionInput> = {
    time: 0,
    day: '',
    equity: 0,
    buyingPower: 0,
    symbols: [row],
    closedPnls,
    closedPnlSums: sums,
    riskState: state,
    options,
    drawdownAutoReset: { sessions: rules.drawdownCoolOffDays, by: BACKTEST_COOL_OFF },
    explain: false,
  };
  let sum = 0;
  for (let i = 0; i < calls; i++) {
    const at = i % DAYS;
    const equity = equities[at] as number;
    row.close = closes[at] as number;
    row.atr = 6 + (i % 5);
    input.time = time[at] as number;
    input.day = dayText[at] as string;
    input.equity = equity;
    input.buyingPower = equity;
    input.riskState = state;
    const decisions = decideAtClose(input);
    state = decisions.riskState;
    for (let e = 0; e < decisions.entries.length; e++) sum += (decisions.entries[e] as { qty: number }).qty;
  }
  return sum;
}

// One path per process (`[calls] [passes] [path]`: scalars or reference; both by default, in turn).
const only = process.argv[4];
for (const [name, run] of [
  ['scalars', scalars],
  ['reference', reference],
] as const) {
  if (only !== undefined && only !== name) continue;
  run();
  let best = Number.POSITIVE_INFINITY;
  let checksum = 0;
  for (let p = 0; p < passes; p++) {
    const c0 = process.cpuUsage();
    checksum = run();
    const c = process.cpuUsage(c0);
    best = Math.min(best, (c.user + c.system) / 1e3);
  }
  console.log(
    `${name === 'scalars' ? 'the fast engines (on scalars)' : 'decideAtClose (reference, live)'}: ${((best * 1e6) / calls).toFixed(0)} ns CPU per call (best of ${passes}), checksum ${checksum}`,
  );
}
