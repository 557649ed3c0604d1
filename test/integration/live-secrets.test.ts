import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../shared/core/errors.js';
import { buildLiveContext } from '../../shared/runtime/equity-live.js';
import { parseLiveEnv } from '../../shared/runtime/live.js';
import { startLiveStack } from '../helpers/live-stack.js';
import { captureProcessOutput } from '../helpers/process-output.js';

/**
 * Secrets Manager stands in as a local server answering GetSecretValue by secret id: an empty
 * secret (as the stack creates it) answers ResourceNotFoundException, as AWS does.
 */
const secrets: Record<string, string | null> = {
  'arn:aws:secretsmanager:us-east-1:111122223333:secret:quantshift/paper/upstash-empty': null,
  'arn:aws:secretsmanager:us-east-1:111122223333:secret:quantshift/paper/upstash-bad': '{"url":"not a url"}',
};
let server: Server;
let origin: string;
let stack: Awaited<ReturnType<typeof startLiveStack>>;
const saved = { ...process.env };

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString('utf8');
    });
    req.on('end', () => {
      const id = (JSON.parse(body) as { SecretId: string }).SecretId;
      const value = secrets[id];
      res.writeHead(value === null || value === undefined ? 400 : 200, {
        'content-type': 'application/x-amz-json-1.1',
      });
      res.end(
        JSON.stringify(
          value === null || value === undefined
            ? {
                __type: 'ResourceNotFoundException',
                message:
                  "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT",
              }
            : { ARN: id, Name: id.split(':').at(-1), SecretString: value, VersionStages: ['AWSCURRENT'] },
        ),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  stack = await startLiveStack({ startTime: '2021-03-18T12:00:00.000Z', withCache: false });
});
afterAll(async () => {
  process.env = saved;
  await stack.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const envWith = (upstashSecretArn: string) =>
  parseLiveEnv({
    ...process.env,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: origin,
    UPSTASH_SECRET_ARN: upstashSecretArn,
  });

describe('the Upstash secret as the stack creates it', () => {
  it('left empty: the functions run without the cache, and say so', async () => {
    const output = captureProcessOutput();
    try {
      process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = origin;
      const ctx = await buildLiveContext(
        envWith('arn:aws:secretsmanager:us-east-1:111122223333:secret:quantshift/paper/upstash-empty'),
      );
      expect(ctx.cache).toBeUndefined();
      expect(output()).toMatch(/the Upstash secret has no value: running without the cache/);
    } finally {
      delete process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;
      vi.restoreAllMocks();
    }
  });

  it('filled with something else than {"url","token"}: the step fails with a clear error', async () => {
    process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = origin;
    try {
      await expect(
        buildLiveContext(
          envWith('arn:aws:secretsmanager:us-east-1:111122223333:secret:quantshift/paper/upstash-bad'),
        ),
      ).rejects.toThrow(ConfigError);
    } finally {
      delete process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;
    }
  });
});
