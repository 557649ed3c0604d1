import { afterEach, describe, expect, it } from 'vitest';
import { liveSleeveIds } from '../../shared/core/config/schema.js';
import type { PaperValidationRecord, ValidationRecord } from '../../shared/core/ports/state-store.js';
import { initialRiskState, setKillSwitch } from '../../shared/core/risk/index.js';
import type { LiveContext } from '../../shared/live/context.js';
import { paperValidationRefusal, validationRefusal } from '../../shared/live/entry-gate.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { generateSignals } from '../../shared/live/generate-signals.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { startLiveStack } from '../helpers/live-stack.js';

const DAY = '2021-03-18';
const at = (hhmm: string) =>
  `${DAY}T${String(Number(hhmm.slice(0, 2)) + 4).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;

let stack: Awaited<ReturnType<typeof startLiveStack>> | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const postOrders = (s: NonNullable<typeof stack>) =>
  s.alpaca.requestLog.filter((r) => r.method === 'POST' && r.path === '/v2/orders');

const passing = (ctx: LiveContext, overrides: Partial<ValidationRecord> = {}): ValidationRecord => ({
  strategy: ctx.config.name,
  configHash: ctx.configHash,
  proceed: true,
  failed: [],
  jobId: 'a'.repeat(64),
  decidedAt: '2021-03-01T00:00:00.000Z',
  ...overrides,
});

const paperPassing = (
  ctx: LiveContext,
  overrides: Partial<PaperValidationRecord> = {},
): PaperValidationRecord => ({
  sleeve: liveSleeveIds(ctx.config)[0] as string,
  configHash: ctx.configHash,
  decision: 'go',
  failed: [],
  figures: { minSessions: 31, sharpe: 1.8 },
  sessions: 31,
  from: '2021-01-04',
  to: '2021-02-16',
  decidedAt: '2021-03-01T00:00:00.000Z',
  ...overrides,
});

describe('the paper validation gate (pure)', () => {
  const record: PaperValidationRecord = {
    sleeve: 's',
    configHash: 'h'.repeat(64),
    decision: 'go',
    failed: [],
    figures: {},
    sessions: 30,
    from: '2026-01-02',
    to: '2026-02-13',
    decidedAt: '2026-02-14T00:00:00.000Z',
  };
  it('lets paper trade without a record', () => {
    expect(paperValidationRefusal('paper', 's', 'x', undefined)).toBeNull();
  });
  it('refuses live without a record, with a no-go, or for another hash', () => {
    expect(paperValidationRefusal('live', 's', record.configHash, undefined)).toMatch(/no paper validation/);
    expect(
      paperValidationRefusal('live', 's', record.configHash, {
        ...record,
        decision: 'no-go',
        failed: ['medianSlippage'],
      }),
    ).toMatch(/did not pass: medianSlippage/);
    expect(paperValidationRefusal('live', 's', 'other'.repeat(13), record)).toMatch(
      /not the deployed config/,
    );
    expect(paperValidationRefusal('live', 's', record.configHash, record)).toBeNull();
  });
});

describe('the validation gate (pure)', () => {
  const record: ValidationRecord = {
    strategy: 's',
    configHash: 'h'.repeat(64),
    proceed: true,
    failed: [],
    jobId: 'j'.repeat(64),
    decidedAt: '2026-01-01T00:00:00.000Z',
  };
  it('lets paper trade without a record', () => {
    expect(validationRefusal('paper', 's', 'x', undefined)).toBeNull();
  });
  it('refuses live without a record, with a failed one, or for another config', () => {
    expect(validationRefusal('live', 's', record.configHash, undefined)).toMatch(/no validation record/);
    expect(
      validationRefusal('live', 's', record.configHash, { ...record, proceed: false, failed: ['sharpe'] }),
    ).toMatch(/did not pass: sharpe/);
    expect(validationRefusal('live', 's', 'other'.repeat(13), record)).toMatch(/not the deployed config/);
    expect(validationRefusal('live', 's', record.configHash, record)).toBeNull();
  });
});

describe('execute-orders asks the entry gate before sending an entry', () => {
  it('a halt set after the signals were generated still stops the entries (exits would go on)', async () => {
    stack = await startLiveStack({ startTime: at('08:00') });
    const { ctx } = stack;
    await marketOpenCheck(ctx, at('09:00'));
    const signals = await generateSignals(ctx, at('09:10'));
    expect(signals.intents.filter((i) => i.purpose === 'entry').length).toBeGreaterThan(0);
    const halted = setKillSwitch(initialRiskState(100_000), true, Date.parse(at('09:12')), 'ops', 'incident');
    const current = await ctx.store.getRiskState();
    expect(await ctx.store.putRiskState(halted.state, current?.version ?? 0)).not.toHaveProperty('conflict');

    const result = await executeOrders(ctx, at('09:15'));
    expect(postOrders(stack)).toHaveLength(0);
    expect(result.intents.every((i) => i.status === 'skipped')).toBe(true);
    expect(result.intents[0]?.reason).toBe('entry refused: kill switch on (incident)');
    expect(stack.notifier.sent.some((n) => n.subject === `Entries refused on ${DAY}`)).toBe(true);
    // A rerun does not resend nor re-alert.
    const alerts = stack.notifier.sent.length;
    await executeOrders(ctx, at('09:16'));
    expect(postOrders(stack)).toHaveLength(0);
    expect(stack.notifier.sent.length).toBe(alerts);
  });

  it('the live stage refuses entries without a passing validation record for the deployed config', async () => {
    stack = await startLiveStack({ startTime: at('08:00') });
    // The same adapters, as the live stage: only the stage differs (the local broker stands in).
    const ctx: LiveContext = { ...stack.ctx, stage: 'live' };
    await marketOpenCheck(ctx, at('09:00'));
    const signals = await generateSignals(ctx, at('09:10'));
    const entries = signals.intents.filter((i) => i.purpose === 'entry');
    expect(entries.length).toBeGreaterThan(0);

    // A failed walk-forward, then a passing one of another config: still refused.
    await ctx.store.putValidation(passing(ctx, { proceed: false, failed: ['deflatedSharpe'] }));
    const refused = await executeOrders(ctx, at('09:15'));
    expect(postOrders(stack)).toHaveLength(0);
    expect(refused.intents[0]?.reason).toMatch(/did not pass: deflatedSharpe/);
  });

  it('the live stage refuses a passing decision made on another config', async () => {
    stack = await startLiveStack({ startTime: at('08:00') });
    const ctx: LiveContext = { ...stack.ctx, stage: 'live' };
    await marketOpenCheck(ctx, at('09:00'));
    await generateSignals(ctx, at('09:10'));
    await ctx.store.putValidation(passing(ctx, { configHash: 'f'.repeat(64) }));
    const afterWrongConfig = await executeOrders(ctx, at('09:14'));
    expect(afterWrongConfig.intents[0]?.reason).toMatch(/not the deployed config/);
    expect(postOrders(stack)).toHaveLength(0);
  });

  it('the live stage refuses entries with a passing research record but no paper validation, or a failed one', async () => {
    stack = await startLiveStack({ startTime: at('08:00') });
    const ctx: LiveContext = { ...stack.ctx, stage: 'live' };
    await marketOpenCheck(ctx, at('09:00'));
    await ctx.store.putValidation(passing(ctx));
    await generateSignals(ctx, at('09:10'));
    const withoutPaper = await executeOrders(ctx, at('09:14'));
    expect(withoutPaper.intents[0]?.reason).toMatch(/no paper validation for sleeve "ma-crossover-atr"/);
    expect(postOrders(stack)).toHaveLength(0);
  });

  it('the live stage refuses entries after a no-go paper validation', async () => {
    stack = await startLiveStack({ startTime: at('08:00') });
    const ctx: LiveContext = { ...stack.ctx, stage: 'live' };
    await marketOpenCheck(ctx, at('09:00'));
    await ctx.store.putValidation(passing(ctx));
    await ctx.store.putPaperValidation(paperPassing(ctx, { decision: 'no-go', failed: ['tradesMatched'] }));
    await generateSignals(ctx, at('09:10'));
    const refused = await executeOrders(ctx, at('09:14'));
    expect(refused.intents[0]?.reason).toMatch(/paper validation .* did not pass: tradesMatched/);
    expect(postOrders(stack)).toHaveLength(0);
  });

  it('the live stage sends the entries when a passing decision and a passing paper validation on the deployed config are recorded', async () => {
    stack = await startLiveStack({ startTime: at('08:00') });
    const ctx: LiveContext = { ...stack.ctx, stage: 'live' };
    await marketOpenCheck(ctx, at('09:00'));
    await ctx.store.putValidation(passing(ctx));
    await ctx.store.putPaperValidation(paperPassing(ctx));
    const signals = await generateSignals(ctx, at('09:10'));
    const result = await executeOrders(ctx, at('09:15'));
    expect(postOrders(stack)).toHaveLength(signals.intents.length);
    expect(result.intents.every((i) => i.status === 'accepted')).toBe(true);
  });
});
