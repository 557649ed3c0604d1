import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bundleFor, CACHE_DIR, loadEsbuild, ROOT } from '../../../shared/research/bundle-cache.mjs';

describe('the cached bundles', () => {
  it('rebuilds when an input changes, reuses the build otherwise, and lazy imports stay separate chunks', async () => {
    const esbuild = loadEsbuild();
    if (esbuild === undefined) throw new Error('esbuild is a dev dependency of the project');
    const dir = mkdtempSync(join(ROOT, 'test', '.bundle-cache-'));
    const name = `test-bundle-${process.pid}`;
    try {
      writeFileSync(join(dir, 'lazy.ts'), 'export const value: number = 1;\n');
      writeFileSync(
        join(dir, 'entry.ts'),
        "export const load = async (): Promise<number> => (await import('./lazy.js')).value;\n",
      );
      const spec = {
        name,
        entry: relative(ROOT, join(dir, 'entry.ts')),
        format: 1,
        esbuildOptions: { splitting: true },
      };
      const first = bundleFor(esbuild, spec);
      expect(bundleFor(esbuild, spec)).toBe(first);
      const module = (await import(first)) as { load: () => Promise<number> };
      expect(await module.load()).toBe(1);
      expect(readFileSync(first, 'utf8')).not.toContain('value = 1');

      writeFileSync(join(dir, 'lazy.ts'), 'export const value: number = 2;\n');
      const second = bundleFor(esbuild, spec);
      expect(second).not.toBe(first);
      expect(await ((await import(second)) as { load: () => Promise<number> }).load()).toBe(2);
      // The older build is kept for a while: a running process may still load its chunks.
      expect(existsSync(first)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      for (const file of readdirSync(CACHE_DIR)) {
        if (file.startsWith(name)) rmSync(join(CACHE_DIR, file), { recursive: true, force: true });
      }
    }
  });

  it('npm start’s launcher runs the CLI from its bundle with the tsx entry’s output', () => {
    const bundled = execFileSync('node', ['bin/start.mjs', '--version'], { cwd: ROOT, encoding: 'utf8' });
    const tsx = execFileSync('node', ['--import', 'tsx', 'bin/quantshift.ts', '--version'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(bundled).toBe(tsx);
    const manifest = JSON.parse(readFileSync(join(CACHE_DIR, 'quantshift-cli.json'), 'utf8')) as {
      bundle: string;
      inputs: Record<string, string>;
    };
    expect(existsSync(join(CACHE_DIR, manifest.bundle))).toBe(true);
    expect(Object.keys(manifest.inputs)).toContain('bin/quantshift.ts');
  });
});
