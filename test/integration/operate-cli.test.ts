import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../shared/cli/main.js';
import { startLiveStack } from '../helpers/live-stack.js';

let stack: Awaited<ReturnType<typeof startLiveStack>>;
let endpoint: string;
let table: string;
/** The CLI's environment: no AWS credentials or region, and no state table or endpoint by default. */
let bare: NodeJS.ProcessEnv;
beforeAll(async () => {
  stack = await startLiveStack({ startTime: '2021-04-05T12:00:00.000Z', withCache: false });
  endpoint = process.env.DYNAMODB_ENDPOINT as string;
  table = process.env.STATE_TABLE as string;
  bare = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !k.startsWith('AWS_') && k !== 'STATE_TABLE' && k !== 'DYNAMODB_ENDPOINT',
    ),
  );
});
afterAll(async () => {
  await stack.close();
});

/** `quantshift <args>` through the CLI's entry, in-process, with the given environment. */
async function quantshift(args: readonly string[], env: NodeJS.ProcessEnv = bare) {
  let stdout = '';
  let stderr = '';
  const sink = (add: (text: string) => void) =>
    new Writable({
      write(chunk, _encoding, done) {
        add(String(chunk));
        done();
      },
    });
  const io = { stdout: sink((t) => (stdout += t)), stderr: sink((t) => (stderr += t)) };
  const code = await runCli(args, io, env);
  return { code, stdout, stderr };
}

describe('quantshift halt / resume / status against the local stack', () => {
  it('halts and resumes through the state table, recording who and why; repeats say so and exit 0', async () => {
    const local = ['--endpoint', endpoint, '--table', table];

    const help = await quantshift(['halt', '--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--reason', '--by', '--table', '--endpoint', '--format'])
      expect(help.stdout).toContain(flag);
    expect(help.stdout).toMatch(/blocks new entries only/);

    const noReason = await quantshift(['resume', ...local]);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toBe('error: resume: --reason <text> is required (say why trading may go on)\n');
    const noTable = await quantshift(['halt', '--reason', 'x']);
    expect(noTable.code).toBe(2);
    expect(noTable.stderr).toMatch(/^error: give --table <name> or set STATE_TABLE/);

    const halt = await quantshift(['halt', '--reason', 'broker incident', '--by', 'alice', ...local]);
    expect(halt.code).toBe(0);
    expect(halt.stderr).not.toMatch(/error/);
    expect(halt.stdout).toMatch(
      /^halted \(table quantshift-local-state at http:\/\/127\.0\.0\.1:\d+\): new entries are blocked/,
    );
    expect(halt.stdout).toContain('  by: alice\n  reason: broker incident\n');
    const risk = await stack.ctx.store.getRiskState();
    expect(risk?.state.killSwitch).toMatchObject({ by: 'alice', reason: 'broker incident' });

    // As `quantshift local up` prints it: the table and the endpoint from the environment.
    const again = await quantshift(['halt', '--reason', 'still broken'], {
      ...bare,
      STATE_TABLE: table,
      DYNAMODB_ENDPOINT: endpoint,
    });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(
      /^already halted \(.*\) since \S+ by alice \(broker incident\); nothing changed\n$/,
    );
    expect((await stack.ctx.store.getRiskState())?.version).toBe(risk?.version);

    const status = await quantshift(['status', ...local]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/kill switch: ON since \S+ by alice \(broker incident\)/);
    expect(status.stdout).toMatch(
      /new entries today \(\d{4}-\d{2}-\d{2}\): blocked: kill switch on \(broker incident\)/,
    );
    expect(status.stdout).toMatch(/halt by alice: broker incident/);

    const resume = await quantshift(['resume', '--reason', 'incident over', '--by', 'bob', ...local]);
    expect(resume.code).toBe(0);
    expect(resume.stdout).toMatch(
      /^resumed \(.*\): the kill switch set since \S+ by alice \(broker incident\) is cleared\n {2}by: bob\n {2}reason: incident over\n/,
    );
    expect((await stack.ctx.store.getRiskState())?.state.killSwitch).toBeNull();

    const twice = await quantshift(['resume', '--reason', 'again', '--by', 'bob', ...local]);
    expect(twice).toMatchObject({ code: 0 });
    expect(twice.stdout).toMatch(/^not halted \(.*\); nothing changed\n$/);

    const today = new Date().toISOString().slice(0, 10);
    const audit = await stack.ctx.store.listAudit(
      new Date(Date.now() - 86_400_000).toISOString(),
      new Date(Date.now() + 60_000).toISOString(),
    );
    expect(audit.map((a) => [a.action, a.by, a.reason])).toEqual([
      ['halt', 'alice', 'broker incident'],
      ['resume', 'bob', 'incident over'],
    ]);
    expect(audit[1]?.time.slice(0, 10)).toBe(today);
    expect(audit[1]?.details).toEqual({ via: 'cli' });

    // A simulated time is for the local stack only.
    const deployedTime = await quantshift(['halt', '--table', table, '--time', '2021-04-05T13:12:00Z']);
    expect(deployedTime.code).toBe(2);
    expect(deployedTime.stderr).toMatch(/--time is for local rehearsals only/);
  }, 120_000);

  it('resets a tripped drawdown breaker only when asked, recorded, with the last equity as the new high-water mark', async () => {
    const local = ['--endpoint', endpoint, '--table', table];
    const current = await stack.ctx.store.getRiskState();
    if (current === undefined) throw new Error('expected the risk state of the first test');
    const tripped = {
      ...current.state,
      killSwitch: null,
      highWaterMark: 120_000,
      lastEquity: 100_000,
      drawdownHalt: { since: Date.parse('2021-04-01T20:15:00Z'), day: '2021-04-01', sessions: 2 },
    };
    expect(await stack.ctx.store.putRiskState(tripped, current.version)).not.toHaveProperty('conflict');

    const plain = await quantshift(['resume', '--reason', 'reviewed', '--by', 'carol', ...local]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(
      /note: new entries are still blocked: drawdown .* \(add --reset-drawdown to reset it\)/,
    );
    expect((await stack.ctx.store.getRiskState())?.state.drawdownHalt).not.toBeNull();

    const reset = await quantshift([
      'resume',
      '--reason',
      'drawdown reviewed, limits unchanged',
      '--by',
      'carol',
      '--reset-drawdown',
      ...local,
    ]);
    expect(reset.code).toBe(0);
    expect(reset.stdout).toContain(
      'drawdown breaker reset (tripped on 2021-04-01): high-water mark 120000.00 -> 100000.00',
    );
    expect(reset.stdout).not.toMatch(/still blocked/);
    const after = await stack.ctx.store.getRiskState();
    expect(after?.state).toMatchObject({ drawdownHalt: null, highWaterMark: 100_000 });
    const audit = await stack.ctx.store.listAudit(
      new Date(Date.now() - 86_400_000).toISOString(),
      new Date(Date.now() + 60_000).toISOString(),
    );
    expect(audit.at(-1)).toMatchObject({
      action: 'drawdown-reset',
      by: 'carol',
      reason: 'drawdown reviewed, limits unchanged',
      details: {
        via: 'cli',
        trippedOn: '2021-04-01',
        previousHighWaterMark: 120_000,
        newHighWaterMark: 100_000,
      },
    });
    const again = await quantshift(['resume', '--reason', 'again', '--reset-drawdown', ...local]);
    expect(again.stdout).toContain('the drawdown breaker was not holding; nothing to reset');
  }, 120_000);

  it("shows the live gate's two records: the research decision and each sleeve's paper validation", async () => {
    const local = ['--endpoint', endpoint, '--table', table];
    const before = await quantshift(['status', ...local]);
    expect(before.stdout).toContain('  research: none recorded');
    expect(before.stdout).toContain('  paper ma-crossover-atr: none recorded');
    await stack.ctx.store.putValidation({
      strategy: 'ma-crossover-atr',
      configHash: createHash('sha256').update(readFileSync('config/equity-strategy.yaml')).digest('hex'),
      proceed: true,
      failed: [],
      jobId: 'j'.repeat(64),
      decidedAt: '2021-03-01T00:00:00.000Z',
    });
    await stack.ctx.store.putPaperValidation({
      sleeve: 'ma-crossover-atr',
      configHash: 'f'.repeat(64),
      decision: 'no-go',
      failed: ['medianSlippage'],
      figures: { medianSlippage: 12 },
      sessions: 33,
      from: '2021-03-01',
      to: '2021-04-15',
      decidedAt: '2021-04-16T00:00:00.000Z',
    });
    const after = await quantshift(['status', ...local]);
    expect(after.stdout).toMatch(/ {2}research: PASS on this config, job j{12}/);
    expect(after.stdout).toMatch(
      / {2}paper ma-crossover-atr: NO-GO \(medianSlippage\) on another version \(f{12}\), 33 sessions 2021-03-01\.\.2021-04-15/,
    );
    const json = JSON.parse((await quantshift(['status', ...local, '--format', 'json'])).stdout);
    expect(json.gate.paper[0].record).toMatchObject({ sleeve: 'ma-crossover-atr', decision: 'no-go' });
  });
});
