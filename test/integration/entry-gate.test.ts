import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { liveSleeveIds, parseConfig, type StrategyConfig } from '../../shared/core/config/schema.js';
import { sleeveHash } from '../../shared/core/config/sleeve-hash.js';
import type { PaperValidationRecord, ValidationRecord } from '../../shared/core/ports/state-store.js';
import { initialRiskState, setKillSwitch, setSleeveHalt } from '../../shared/core/risk/index.js';
import type { LiveContext } from '../../shared/live/context.js';
import { entryRefusal, paperValidationRefusal, validationRefusal } from '../../shared/live/entry-gate.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { generateSignals } from '../../shared/live/generate-signals.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { validationRecords } from '../../shared/pipeline/steps/aggregate.js';
import { postOrders, startLiveStack } from '../helpers/live-stack.js';

const DAY = '2021-03-18';
const at = (hhmm: string) =>
  `${DAY}T${String(Number(hhmm.slice(0, 2)) + 4).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;

let stack: Awaited<ReturnType<typeof startLiveStack>> | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

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
  // The paper record is made on the sleeve's own hash (`paperGateHash`), as the research gate asks.
  configHash: sleeveHash(ctx.config, liveSleeveIds(ctx.config)[0] as string),
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
  const deployed = { configHash: record.configHash, sleeveHash: 'a'.repeat(64) };
  it('lets paper trade without a record', () => {
    expect(validationRefusal('paper', 's', deployed, undefined)).toBeNull();
  });
  it('refuses live without a record, with a failed one, or for another config (a record without sleeveHash)', () => {
    expect(validationRefusal('live', 's', deployed, undefined)).toMatch(
      /no validation record for sleeve "s"/,
    );
    expect(
      validationRefusal('live', 's', deployed, { ...record, proceed: false, failed: ['sharpe'] }),
    ).toMatch(/did not pass: sharpe/);
    expect(validationRefusal('live', 's', { ...deployed, configHash: 'other'.repeat(13) }, record)).toMatch(
      /not the deployed config/,
    );
    expect(validationRefusal('live', 's', deployed, record)).toBeNull();
  });
  it('compares a sleeve record by its sleeveHash, whatever the config file hash', () => {
    const sleeveRecord = { ...record, configHash: 'x'.repeat(64), sleeveHash: deployed.sleeveHash };
    expect(validationRefusal('live', 's', deployed, sleeveRecord)).toBeNull();
    expect(validationRefusal('live', 's', { ...deployed, sleeveHash: 'b'.repeat(64) }, sleeveRecord)).toMatch(
      /validated sleeve aaaaaaaaaaaa, not the deployed sleeve bbbbbbbbbbbb/,
    );
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

  it('the live stage sends the entries when the sleeve record carries the deployed sleeve hash, whatever the file hash', async () => {
    stack = await startLiveStack({ startTime: at('08:00') });
    const ctx: LiveContext = { ...stack.ctx, stage: 'live' };
    await marketOpenCheck(ctx, at('09:00'));
    // Reformatting the file changes its hash, not the sleeve's: the gate stays open.
    await ctx.store.putValidation(
      passing(ctx, { configHash: 'f'.repeat(64), sleeveHash: sleeveHash(ctx.config, ctx.config.name) }),
    );
    await ctx.store.putPaperValidation(paperPassing(ctx));
    const signals = await generateSignals(ctx, at('09:10'));
    const result = await executeOrders(ctx, at('09:15'));
    expect(postOrders(stack)).toHaveLength(signals.intents.length);
    expect(result.intents.every((i) => i.status === 'accepted')).toBe(true);
  });

  it('a halt of the config’s one sleeve stops its entries (a single-strategy config is one sleeve)', async () => {
    stack = await startLiveStack({ startTime: at('08:00') });
    const { ctx } = stack;
    await marketOpenCheck(ctx, at('09:00'));
    await generateSignals(ctx, at('09:10'));
    const stored = await ctx.store.getRiskState();
    const halted = setSleeveHalt(
      stored?.state ?? initialRiskState(100_000),
      ctx.config.name,
      true,
      Date.parse(at('09:12')),
      'ops',
      'sleeve review',
    );
    expect(await ctx.store.putRiskState(halted.state, stored?.version ?? 0)).not.toHaveProperty('conflict');
    const result = await executeOrders(ctx, at('09:15'));
    expect(postOrders(stack)).toHaveLength(0);
    expect(result.intents[0]?.reason).toBe(`entry refused: sleeve ${ctx.config.name} halted (sleeve review)`);
  });
});

describe('the validation gate per sleeve in the live stage (config/multi-strategy.yaml)', () => {
  it('editing one sleeve closes only that sleeve’s gate; editing an account setting closes all', async () => {
    stack = await startLiveStack({ startTime: at('08:00') });
    const text = readFileSync('config/multi-strategy.yaml', 'utf8');
    const validated = parseConfig(text, 'multi.yaml');
    const ids = liveSleeveIds(validated);
    const live = (config: StrategyConfig): LiveContext => ({
      ...(stack as NonNullable<typeof stack>).ctx,
      stage: 'live',
      config,
    });
    // No record yet: every sleeve is refused.
    for (const id of ids)
      expect(await entryRefusal(live(validated), DAY, 'SPY', id)).toMatch(/no validation record/);

    const records = validationRecords(
      validated,
      { jobId: 'a'.repeat(64), configHash: 'c'.repeat(64) },
      { proceed: true, failed: [] },
      new Map([['volume', { proceed: false, failed: ['sharpe'] }]]),
      '2021-03-01T00:00:00.000Z',
    );
    for (const record of records) await stack.ctx.store.putValidation(record);
    // Live needs the paper validation of each sleeve too, on the same sleeve hash.
    for (const id of ids)
      await stack.ctx.store.putPaperValidation(
        paperPassing(live(validated), { sleeve: id, configHash: sleeveHash(validated, id) }),
      );
    for (const id of ids.filter((i) => i !== 'volume'))
      expect(await entryRefusal(live(validated), DAY, 'SPY', id)).toBeNull();
    expect(await entryRefusal(live(validated), DAY, 'SPY', 'volume')).toMatch(/did not pass: sharpe/);

    const rsiEdited = parseConfig(
      text.replace(
        'params: { period: 14, entry: 30, exit: 50 }',
        'params: { period: 14, entry: 25, exit: 50 }',
      ),
      'edited.yaml',
    );
    expect(rsiEdited.sleeves?.[1]?.params).toMatchObject({ entry: 25 });
    expect(await entryRefusal(live(rsiEdited), DAY, 'SPY', 'rsi')).toMatch(
      /validated sleeve \w{12}, not the deployed sleeve \w{12}/,
    );
    for (const id of ['trend', 'breakout', 'bollinger'])
      expect(await entryRefusal(live(rsiEdited), DAY, 'SPY', id)).toBeNull();

    const accountEdited = parseConfig(text.replace('slippageBps: 5', 'slippageBps: 6'), 'edited.yaml');
    for (const id of ids) expect(await entryRefusal(live(accountEdited), DAY, 'SPY', id)).not.toBeNull();
    // Paper needs no record.
    expect(await entryRefusal({ ...live(accountEdited), stage: 'paper' }, DAY, 'SPY', 'rsi')).toBeNull();
  });
});
