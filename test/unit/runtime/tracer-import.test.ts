import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/**
 * Loading the X-Ray SDK (Powertools Tracer) enables cls-hooked's async hook, which makes every
 * promise of the process many times dearer: the stream task, which only builds the live context,
 * must not load it; a Lambda handler loads it when its first invocation builds the middy chain.
 */
function xrayModulesAfter(script: string, env: Record<string, string> = {}): number {
  const out = execFileSync(
    'node',
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `${script}
const { createRequire } = await import('node:module');
const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('aws-xray-sdk-core'));
process.stdout.write(String(loaded.length));`,
    ],
    { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env } },
  );
  return Number(out.trim().split('\n').pop());
}

describe('the X-Ray tracer is loaded only by Lambda handlers', () => {
  it('the stream task does not load it', () => {
    expect(xrayModulesAfter("await import('./shared/stream/main.ts');")).toBe(0);
  });

  it('a handler loads it when its chain is built', () => {
    const script = `
const { equityLiveHandler } = await import('./shared/runtime/equity-live.ts');
const handler = equityLiveHandler('risk-check', async () => ({}));
// No DynamoDB listens there: the invocation fails once its chain is built.
await handler({ step: 'risk-check', scheduledTime: '2021-03-18T14:00:00Z' }, {}).catch(() => {});`;
    const env = {
      STAGE: 'paper',
      STATE_TABLE: 'state',
      IDEMPOTENCY_TABLE: 'idempotency',
      DYNAMODB_ENDPOINT: 'http://127.0.0.1:9',
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_MAX_ATTEMPTS: '1',
    };
    expect(xrayModulesAfter(script, env)).toBeGreaterThan(0);
  });
});
