import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { localLambdaContext } from '../../shared/adapters/local/lambda-context.js';
import {
  LOCAL_KEYS,
  LOCAL_UPSTASH_TOKEN,
  type LocalLiveStack,
  startLocalLiveStack,
} from '../../shared/adapters/local/live-stack.js';
import { captureProcessOutput } from '../helpers/process-output.js';

const DAY = '2021-03-18';
const at = (hhmm: string) =>
  `${DAY}T${String(Number(hhmm.slice(0, 2)) + 4).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;

const lambdaContext = (name: string) =>
  localLambdaContext(name, `req-${Math.random().toString(16).slice(2)}`);

let stack: LocalLiveStack;
let output: () => string = () => '';
beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qs-live-'));
  const configPath = join(dir, 'config.yaml');
  writeFileSync(
    configPath,
    readFileSync('config/equity-strategy.yaml', 'utf8').replace(
      '  lookbackDays: 730',
      '  lookbackDays: 730\n  historyFrom: 2021-01-11',
    ),
  );
  stack = await startLocalLiveStack({
    dataDir: 'data',
    startTime: at('08:00'),
    configPath,
    faultLinks: true,
  });
  Object.assign(process.env, stack.env);
  output = captureProcessOutput();
});
afterAll(async () => {
  vi.restoreAllMocks();
  await stack.close();
});

describe('the live Lambda handlers, invoked locally against the local stack', () => {
  it('run the day in schedule order; a repeated scheduled run returns the first result; no secret is logged', async () => {
    const open = (await import('../../functions/market-open-check/handler.js')).handler;
    const signals = (await import('../../functions/generate-signals/handler.js')).handler;
    const execute = (await import('../../functions/execute-orders/handler.js')).handler;
    const session = await open(
      { step: 'market-open-check', scheduledTime: at('09:00') },
      lambdaContext('open'),
    );
    expect(session).toMatchObject({ date: DAY, isOpen: true });

    const event = { step: 'generate-signals', scheduledTime: at('09:10') };
    const first = await signals(event, lambdaContext('signals'));
    const second = await signals(event, lambdaContext('signals'));
    expect(second).toEqual(first);
    expect(first.intents.length).toBeGreaterThan(0);

    const executed = await execute(
      { step: 'execute-orders', scheduledTime: at('09:15') },
      lambdaContext('execute'),
    );
    expect(executed.status).toBe('executed');
    const posts = stack.alpaca.requestLog.filter((r) => r.method === 'POST' && r.path === '/v2/orders');
    expect(posts).toHaveLength(first.intents.length);

    await expect(
      signals({ step: 'risk-check', scheduledTime: at('09:10') }, lambdaContext('signals')),
    ).rejects.toThrow(/the event is for risk-check/);
    await expect(signals({ step: 'generate-signals' }, lambdaContext('signals'))).rejects.toThrow(
      /scheduledTime/,
    );

    expect(output()).toMatch(/"level":"INFO"/);
    for (const secret of [LOCAL_KEYS.secret, LOCAL_KEYS.keyId, LOCAL_UPSTASH_TOKEN])
      expect(output()).not.toContain(secret);
  });

  it('validates the event before the idempotency layer: a bad event names its field, never a persistence error', async () => {
    const check = (await import('../../functions/risk-check/handler.js')).handler;
    for (const event of [{}, { scheduledTime: at('10:00') }, { step: 'risk-check', scheduledTime: 'soon' }]) {
      const error = await check(event, lambdaContext('check')).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(error?.name).toBe('ConfigError');
      expect(error?.message).toMatch(/risk-check: bad event: (step|scheduledTime)/);
    }
  });

  it('an event with an extra field sharing a finished run key is validated, not answered from the cache', async () => {
    const open = (await import('../../functions/market-open-check/handler.js')).handler;
    const event = { step: 'market-open-check', scheduledTime: at('09:00') };
    const first = await open(event, lambdaContext('open'));
    expect(await open(event, lambdaContext('open'))).toEqual(first);
    await expect(open({ ...event, flatten: true }, lambdaContext('open'))).rejects.toThrow(
      /bad event: .*flatten/,
    );
  });

  it('DynamoDB unreachable: the failure is logged with its root cause named', async () => {
    const check = (await import('../../functions/risk-check/handler.js')).handler;
    const before = output().length;
    stack.links?.dynamo.cut();
    try {
      await expect(
        check({ step: 'risk-check', scheduledTime: at('10:00') }, lambdaContext('check')),
      ).rejects.toThrow();
    } finally {
      stack.links?.dynamo.restore();
    }
    const failed = output()
      .slice(before)
      .split('\n')
      .filter((line) => line.includes('"step failed"'))
      .map(
        (line) => JSON.parse(line) as { error?: unknown; rootCause?: { name?: string; message?: string } },
      );
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ error: { name: 'IdempotencyPersistenceLayerError' } });
    expect(failed[0]?.rootCause?.name).not.toBe('IdempotencyPersistenceLayerError');
    expect(JSON.stringify(failed[0]?.rootCause)).toMatch(/ECONNRESET|socket hang up/);
  });
});
