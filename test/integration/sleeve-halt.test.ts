import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DynamoStateStore } from '../../shared/adapters/dynamodb/state-store.js';
import { runCli } from '../../shared/cli/main.js';
import { parseConfig } from '../../shared/core/config/schema.js';
import type { IntentRecord } from '../../shared/core/ports/state-store.js';
import { initialRiskState } from '../../shared/core/risk/index.js';
import type { LiveContext } from '../../shared/live/context.js';
import { entryRefusal } from '../../shared/live/entry-gate.js';
import { haltSleeve, OperatorInputError, resumeSleeve } from '../../shared/live/kill-switch.js';
import { startLiveStack } from '../helpers/live-stack.js';

const DAY = '2021-04-05';
const at = (hhmm: string) =>
  `${DAY}T${String(Number(hhmm.slice(0, 2)) + 4).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;
const MULTI = 'config/multi-strategy.yaml';
const multi = parseConfig(readFileSync(MULTI, 'utf8'), MULTI);
const scope = (sleeve: string) => ({ sleeve, unlabelled: undefined });

let stack: Awaited<ReturnType<typeof startLiveStack>>;
/** The live context of a sleeves config (the stage trades config/multi-strategy.yaml). */
let ctx: LiveContext;
let local: string[];
/** The CLI's environment: no AWS credentials or region, and no state table or endpoint. */
let bare: NodeJS.ProcessEnv;
beforeAll(async () => {
  stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
  ctx = { ...stack.ctx, config: multi };
  local = [
    '--endpoint',
    process.env.DYNAMODB_ENDPOINT as string,
    '--table',
    process.env.STATE_TABLE as string,
  ];
  bare = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) =>
        !k.startsWith('AWS_') && !['STATE_TABLE', 'DYNAMODB_ENDPOINT', 'QUANTSHIFT_CONFIG'].includes(k),
    ),
  );
});
afterAll(async () => {
  await stack.close();
});

async function quantshift(args: readonly string[]) {
  let stdout = '';
  let stderr = '';
  const sink = (add: (text: string) => void) =>
    new Writable({
      write(chunk, _encoding, done) {
        add(String(chunk));
        done();
      },
    });
  const code = await runCli(
    args,
    { stdout: sink((t) => (stdout += t)), stderr: sink((t) => (stderr += t)) },
    bare,
  );
  return { code, stdout, stderr };
}

const entry = (sleeve: string, symbol: string): IntentRecord => ({
  clientOrderId: `qs-test-${sleeve}-${symbol}-20210405-entry`,
  sleeve,
  date: DAY,
  strategy: sleeve,
  symbol,
  purpose: 'entry',
  side: 'buy',
  qty: 10,
  type: 'market',
  timeInForce: 'opg',
  referencePrice: 100,
  protectiveStop: 95,
  status: 'recorded',
  filledQty: 0,
  configHash: 'h',
  gitCommit: 'c',
  createdAt: at('09:10'),
  updatedAt: at('09:10'),
});

describe('halt and resume one sleeve, against the local DynamoDB (dynalite)', () => {
  it('an old risk state item without sleeve halts reads as no sleeve halted', async () => {
    const store = ctx.store as DynamoStateStore;
    expect(await store.putRiskState(initialRiskState(100_000), 0)).toEqual({ version: 1 });
    const stored = await store.getRiskState();
    expect(stored?.state.sleeveHalts).toBeUndefined();
    for (const sleeve of ['trend', 'rsi', 'breakout'])
      expect(await entryRefusal(ctx, DAY, 'SPY', sleeve)).toBeNull();
  });

  it('halting one sleeve refuses its entries only; the other sleeves keep trading; resume opens it again', async () => {
    const { store } = ctx;
    await store.createIntent(entry('rsi', 'SPY'));
    await store.createIntent(entry('trend', 'SPY'));
    const halted = await haltSleeve(store, scope('rsi'), {
      reason: 'rsi misbehaves',
      by: 'alice',
      time: at('09:12'),
    });
    expect(halted).toMatchObject({ changed: true, previous: null });
    expect(halted.state?.sleeveHalts?.rsi).toEqual({
      since: Date.parse(at('09:12')),
      reason: 'rsi misbehaves',
      by: 'alice',
    });
    expect(halted.state?.killSwitch).toBeNull();
    // Today's recorded entries of that sleeve only are skipped.
    expect(halted.entriesSkipped).toEqual(['qs-test-rsi-SPY-20210405-entry']);
    expect((await store.getIntent(DAY, 'qs-test-trend-SPY-20210405-entry'))?.status).toBe('recorded');

    expect(await entryRefusal(ctx, DAY, 'SPY', 'rsi')).toBe('sleeve rsi halted (rsi misbehaves)');
    expect(await entryRefusal(ctx, DAY, 'SPY', 'trend')).toBeNull();
    expect(await entryRefusal(ctx, DAY, 'QQQ', 'breakout')).toBeNull();
    // Without a sleeve, a sleeves config is refused only when every sleeve is.
    expect(await entryRefusal(ctx, DAY)).toBeNull();
    expect(await entryRefusal(ctx, DAY, 'SPY', 'rsi-9')).toMatch(
      /unknown sleeve "rsi-9" \(the config's sleeves are trend, rsi/,
    );

    // The same halt again changes nothing; the kill switch of the account still acts on every sleeve.
    const again = await haltSleeve(store, scope('rsi'), { reason: 'again', by: 'bob', time: at('09:13') });
    expect(again).toMatchObject({ changed: false, previous: { by: 'alice', reason: 'rsi misbehaves' } });

    const resumed = await resumeSleeve(store, scope('rsi'), {
      reason: 'fixed',
      by: 'bob',
      time: at('10:00'),
    });
    expect(resumed).toMatchObject({ changed: true, stillBlocked: null, previous: { by: 'alice' } });
    expect(resumed.state?.sleeveHalts).toEqual({});
    expect(await entryRefusal(ctx, DAY, 'SPY', 'rsi')).toBeNull();
    await expect(
      resumeSleeve(store, scope('rsi'), { reason: ' ', by: 'bob', time: at('10:01') }),
    ).rejects.toThrow(OperatorInputError);

    // Recorded as a halt of the account is: audit records with who and why, breaker events, the sleeve named.
    const audit = await store.listAudit(at('09:00'), at('11:00'));
    expect(audit.map((a) => [a.action, a.by, a.reason, a.details?.sleeve])).toEqual([
      ['halt', 'alice', 'rsi misbehaves', 'rsi'],
      ['resume', 'bob', 'fixed', 'rsi'],
    ]);
    const events = await (store as DynamoStateStore).listBreakerEvents(
      Date.parse(at('09:00')),
      Date.parse(at('11:00')),
    );
    expect(events.map((e) => [e.breaker, e.action, e.sleeve, e.by])).toEqual([
      ['kill-switch', 'trip', 'rsi', 'alice'],
      ['kill-switch', 'reset', 'rsi', 'bob'],
    ]);
  });

  it('when every sleeve is halted, a check without a sleeve is refused too', async () => {
    for (const sleeve of multi.sleeves?.map((s) => s.id) ?? [])
      await haltSleeve(ctx.store, scope(sleeve), { reason: `stop ${sleeve}`, by: 'ops', time: at('11:00') });
    expect(await entryRefusal(ctx, DAY)).toMatch(/^sleeve trend halted \(stop trend\); sleeve rsi halted/);
    for (const sleeve of multi.sleeves?.map((s) => s.id) ?? [])
      await resumeSleeve(ctx.store, scope(sleeve), { reason: 'go', by: 'ops', time: at('11:30') });
    expect(await entryRefusal(ctx, DAY)).toBeNull();
  });
});

describe('quantshift halt / resume / status --sleeve against the local stack', () => {
  it('halts one sleeve of config/multi-strategy.yaml while the others keep trading, then resumes it', async () => {
    const withConfig = [...local, '--config', MULTI];
    const help = await quantshift(['halt', '--help']);
    expect(help.stdout).toContain('--sleeve');
    expect(help.stdout).toContain('--config');

    const unknown = await quantshift(['halt', '--sleeve', 'rsi-1', '--reason', 'x', ...withConfig]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe(
      'error: halt --sleeve rsi-1: no such sleeve in multi-strategy; its sleeves are trend, rsi, breakout, bollinger, volume\n',
    );
    // The default config (the stage's: env QUANTSHIFT_CONFIG, else the equity config) has one sleeve.
    const single = await quantshift(['resume', '--sleeve', 'rsi', '--reason', 'x', ...local]);
    expect(single.code).toBe(2);
    expect(single.stderr).toMatch(/no such sleeve in ma-crossover-atr; its sleeves are ma-crossover-atr\n$/);

    const halt = await quantshift([
      'halt',
      '--sleeve',
      'rsi',
      '--reason',
      'slippage review',
      '--by',
      'carol',
      ...withConfig,
    ]);
    expect(halt.code).toBe(0);
    expect(halt.stdout).toMatch(
      /^sleeve rsi halted \(table .*\): its new entries are blocked .*the other sleeves keep trading/,
    );
    expect(halt.stdout).toContain('  by: carol\n  reason: slippage review\n');
    expect(await entryRefusal(ctx, DAY, 'SPY', 'rsi')).toBe('sleeve rsi halted (slippage review)');
    expect(await entryRefusal(ctx, DAY, 'SPY', 'trend')).toBeNull();

    const again = await quantshift(['halt', '--sleeve', 'rsi', '--reason', 'x', ...withConfig]);
    expect(again.stdout).toMatch(
      /^sleeve rsi already halted \(.*\) since \S+ by carol \(slippage review\); nothing changed\n$/,
    );

    const status = await quantshift(['status', ...withConfig]);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('kill switch: off');
    expect(status.stdout).toMatch(/sleeves of multi-strategy \(config\/multi-strategy\.yaml\):/);
    expect(status.stdout).toMatch(
      / {2}rsi: HALTED since \S+ by carol \(slippage review\); live gate: no validation record/,
    );
    expect(status.stdout).toMatch(/ {2}trend: not halted; live gate: no validation record/);
    const json = JSON.parse((await quantshift(['status', ...withConfig, '--format', 'json'])).stdout);
    expect(json.sleeves.map((s: { id: string; halt: unknown }) => [s.id, s.halt !== null])).toEqual([
      ['trend', false],
      ['rsi', true],
      ['breakout', false],
      ['bollinger', false],
      ['volume', false],
    ]);

    // Away from the repository, without a config: status still shows the account and the halted sleeve.
    const away = await promisify(execFile)(
      process.execPath,
      [resolve('bin/quantshift.js'), 'status', ...local],
      { cwd: mkdtempSync(join(tmpdir(), 'qs-status-')), env: { ...bare, AWS_REGION: 'us-east-1' } },
    );
    expect(away.stdout).toContain('kill switch: off');
    expect(away.stdout).toMatch(
      /sleeves halted \(no config here: give --config <file> for every sleeve and its live gate\):\n {2}rsi: HALTED since \S+ by carol \(slippage review\); live gate: unknown/,
    );

    const drawdown = await quantshift([
      'resume',
      '--sleeve',
      'rsi',
      '--reason',
      'x',
      '--reset-drawdown',
      ...withConfig,
    ]);
    expect(drawdown.code).toBe(2);
    const resume = await quantshift([
      'resume',
      '--sleeve',
      'rsi',
      '--reason',
      'reviewed',
      '--by',
      'dave',
      ...withConfig,
    ]);
    expect(resume.code).toBe(0);
    expect(resume.stdout).toMatch(
      /^resumed \(.*\): the halt of sleeve rsi set since \S+ by carol \(slippage review\) is cleared\n {2}by: dave\n/,
    );
    expect(await entryRefusal(ctx, DAY, 'SPY', 'rsi')).toBeNull();
    const twice = await quantshift([
      'resume',
      '--sleeve',
      'rsi',
      '--reason',
      'x',
      ...withConfig,
      '--format',
      'json',
    ]);
    expect(JSON.parse(twice.stdout)).toMatchObject({ command: 'resume', sleeve: 'rsi', changed: false });
  }, 120_000);
});

describe('quantshift halt --sleeve --topic alerts the alert topic (a local server stands in for SNS)', () => {
  it('publishes a critical alert for the halt and an info one for the resume, once each', async () => {
    const published: URLSearchParams[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        published.push(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
        res.writeHead(200, { 'content-type': 'text/xml' });
        res.end(
          `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>m</MessageId></PublishResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishResponse>`,
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const saved = { ...process.env };
    // The SDK reads its endpoint, region and credentials from the process environment.
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_SNS: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
    });
    try {
      const topic = 'arn:aws:sns:us-east-1:123456789012:quantshift-paper-alerts';
      const args = [...local, '--config', MULTI, '--topic', topic, '--by', 'erin'];
      const halt = await quantshift(['halt', '--sleeve', 'breakout', '--reason', 'data gap', ...args]);
      expect(halt.code).toBe(0);
      expect(halt.stdout).toContain(`  alerted: ${topic}\n`);
      await quantshift(['halt', '--sleeve', 'breakout', '--reason', 'data gap', ...args]);
      const resume = await quantshift(['resume', '--sleeve', 'breakout', '--reason', 'data back', ...args]);
      expect(resume.code).toBe(0);
      expect(published.map((p) => [p.get('TopicArn'), p.get('Subject')])).toEqual([
        [topic, 'Halted: sleeve breakout (erin)'],
        [topic, 'Resumed: sleeve breakout (erin)'],
      ]);
      // A topic that is not an SNS ARN is a usage error before anything is written.
      const version = (await ctx.store.getRiskState())?.version;
      const bad = await quantshift([
        'halt',
        '--sleeve',
        'volume',
        '--reason',
        'x',
        ...args,
        '--topic',
        'alerts',
      ]);
      expect(bad).toMatchObject({ code: 2, stderr: 'error: --topic alerts: not an SNS topic ARN\n' });
      expect((await ctx.store.getRiskState())?.version).toBe(version);
      // A topic that cannot be reached: the halt is recorded all the same, and stderr says the alert was not sent.
      process.env.AWS_ENDPOINT_URL_SNS = 'http://127.0.0.1:9';
      process.env.AWS_MAX_ATTEMPTS = '1';
      const unreachable = await quantshift(['halt', '--sleeve', 'volume', '--reason', 'x', ...args]);
      expect(unreachable.code).toBe(0);
      expect(unreachable.stderr).toMatch(
        /^warning: the change is recorded, but its alert to arn:\S+ was not sent: /,
      );
      expect(unreachable.stdout).not.toContain('alerted');
      expect(await entryRefusal(ctx, DAY, 'SPY', 'volume')).toBe('sleeve volume halted (x)');
      await resumeSleeve(ctx.store, scope('volume'), { reason: 'done', by: 'erin', time: at('15:00') });

      const message = JSON.parse(published[0]?.get('Message') ?? '{}');
      expect(JSON.stringify(message)).toContain('data gap');
      expect(JSON.stringify(message)).toContain('the other sleeves keep trading');
    } finally {
      for (const key of [
        'AWS_ENDPOINT_URL_SNS',
        'AWS_MAX_ATTEMPTS',
        'AWS_REGION',
        'AWS_ACCESS_KEY_ID',
        'AWS_SECRET_ACCESS_KEY',
      ]) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }, 60_000);
});
