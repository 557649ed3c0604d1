import { execFile } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterEach, describe, expect, it } from 'vitest';

/** SHA-256 for the SDK's signer, from node:crypto. */
class Sha256 {
  private readonly hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView) {
    this.hash.update(bytes(data));
  }
  async digest() {
    return new Uint8Array(this.hash.digest());
  }
  reset() {}
}

const bytes = (data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array =>
  typeof data === 'string'
    ? data
    : data instanceof ArrayBuffer
      ? new Uint8Array(data)
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);

const NOW = '2026-03-02T13:20:00.000Z';
const CREDS = {
  AccessKeyId: 'AKIDLOCALTEST',
  SecretAccessKey: 'local-secret-for-the-test',
  Token: 'local-session-token',
};
const KEY = 'assets/0a1b2c3d.mjs';
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('the stream task bootstrap (functions/stream/bootstrap.mjs)', () => {
  it('fetches the bundle with a Signature V4 GET the AWS SDK signer agrees with, writes the config, and runs it', async () => {
    const seen: { authorization?: string; expected?: string } = {};
    const signer = new SignatureV4({
      service: 's3',
      region: 'us-east-1',
      credentials: {
        accessKeyId: CREDS.AccessKeyId,
        secretAccessKey: CREDS.SecretAccessKey,
        sessionToken: CREDS.Token,
      },
      sha256: Sha256,
      uriEscapePath: false,
      applyChecksum: false,
    });
    const server = createServer(async (req, res) => {
      if (req.url === '/creds') return res.end(JSON.stringify(CREDS));
      if (req.url !== `/${KEY}`) return res.writeHead(404).end('no such key');
      const signed = await signer.sign(
        {
          method: 'GET',
          protocol: 'http:',
          hostname: '127.0.0.1',
          path: req.url,
          headers: {
            host: req.headers.host as string,
            'x-amz-content-sha256': req.headers['x-amz-content-sha256'] as string,
          },
        },
        { signingDate: new Date(NOW) },
      );
      seen.authorization = req.headers.authorization;
      seen.expected = signed.headers.authorization;
      if (seen.authorization !== seen.expected) return res.writeHead(403).end('SignatureDoesNotMatch');
      res.end("process.stdout.write('bundle ran with ' + process.env.QUANTSHIFT_CONFIG);");
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const dir = mkdtempSync(join(tmpdir(), 'qs-bootstrap-'));
    dirs.push(dir);
    try {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['--input-type=module', '-e', readFileSync('functions/stream/bootstrap.mjs', 'utf8')],
        {
          env: {
            PATH: process.env.PATH,
            AWS_REGION: 'us-east-1',
            AWS_CONTAINER_CREDENTIALS_FULL_URI: `${origin}/creds`,
            STREAM_BUNDLE_ORIGIN: origin,
            STREAM_BUNDLE_BUCKET: 'assets-bucket',
            STREAM_BUNDLE_KEY: KEY,
            STREAM_BUNDLE_DIR: dir,
            STREAM_BOOTSTRAP_NOW: NOW,
            QUANTSHIFT_CONFIG_YAML: 'name: test\n',
          },
        },
      );
      expect(seen.authorization).toBe(seen.expected);
      expect(seen.authorization).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIDLOCALTEST\/20260302\/us-east-1\/s3\/aws4_request/,
      );
      expect(stdout).toBe(`bundle ran with ${dir}/config/strategy.yaml`);
      expect(readFileSync(join(dir, 'config', 'strategy.yaml'), 'utf8')).toBe('name: test\n');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
