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
  stack = await startLocalLiveStack({ dataDir: 'data', startTime: at('08:00'), configPath });
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
});
