import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { writeBenchResults } from '../../../bench/results.js';
import { testArtifactDir } from '../../helpers/artifacts.js';

const dir = testArtifactDir('bench');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(env: NodeJS.ProcessEnv) {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: unknown) => {
    stdout += String(chunk);
    return true;
  }) as never);
  vi.spyOn(process.stderr, 'write').mockImplementation(((chunk: unknown) => {
    stderr += String(chunk);
    return true;
  }) as never);
  const path = join(dir, 'results.json');
  try {
    writeBenchResults({ results: [1, 2] }, path, env);
  } finally {
    vi.restoreAllMocks();
  }
  return { stdout, stderr, file: JSON.parse(readFileSync(path, 'utf8')) };
}

describe('npm run bench writes bench/results.json', () => {
  it('under a plain npm run: the file only (npm prints its banner on stdout), and says where', () => {
    const { stdout, stderr, file } = run({ npm_lifecycle_event: 'bench', npm_config_loglevel: 'notice' });
    expect(file).toEqual({ results: [1, 2] });
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^bench: wrote .*results\.json \(npm run -s bench also prints it on stdout\)\n$/);
  });

  it('under npm run -s, or run directly: the file and the same JSON on stdout', () => {
    for (const env of [{ npm_lifecycle_event: 'bench', npm_config_loglevel: 'silent' }, {}]) {
      const { stdout, file } = run(env);
      expect(JSON.parse(stdout)).toEqual(file);
    }
  });
});
