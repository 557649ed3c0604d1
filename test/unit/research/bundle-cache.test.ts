import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  bundledUrl,
  bundleFor,
  CACHE_DIR,
  isBuildOf,
  loadEsbuild,
  ROOT,
  sourceBundle,
} from '../../../shared/research/bundle-cache.mjs';

/** A temporary folder of sources under the root, and the cache files of the bundles named `name`. */
function scratch(): { dir: string; name: string; cleanUp: () => void } {
  const dir = mkdtempSync(join(ROOT, 'test', '.bundle-cache-'));
  const name = `test-bundle-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  return {
    dir,
    name,
    cleanUp: () => {
      rmSync(dir, { recursive: true, force: true });
      for (const file of readdirSync(CACHE_DIR)) {
        if (file.startsWith(name)) rmSync(join(CACHE_DIR, file), { recursive: true, force: true });
      }
    },
  };
}

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

  it('gives each module of a source bundle its own import.meta.url, and rebuilds it when a source changes', async () => {
    const { dir, name, cleanUp } = scratch();
    try {
      mkdirSync(join(dir, 'deep', 'er'), { recursive: true });
      writeFileSync(join(dir, 'deep', 'er', 'where.ts'), 'export const where: string = import.meta.url;\n');
      writeFileSync(
        join(dir, 'entry.ts'),
        [
          "import { where } from './deep/er/where.js';",
          'export const here = import.meta.url;',
          'export const there = where;',
          "export const text = 'createRequire(import.meta.url)';",
          'export const version = 1;',
          '',
        ].join('\n'),
      );
      const spec = sourceBundle(name, relative(ROOT, join(dir, 'entry.ts')));
      const reports: string[] = [];
      const first = await bundledUrl(spec, 'QUANTSHIFT_TEST_BUNDLE_OFF', (line) => reports.push(line));
      expect(first).toBeDefined();
      expect(reports).toHaveLength(1);
      expect(reports[0]).toMatch(
        new RegExp(`^built the ${name} bundle \\(test/.*entry\\.ts\\) in \\d+\\.\\d s$`),
      );
      const loaded = (await import((first as URL).href)) as Record<string, unknown>;
      expect(loaded.here).toBe(pathToFileURL(join(dir, 'entry.ts')).href);
      expect(loaded.there).toBe(pathToFileURL(join(dir, 'deep', 'er', 'where.ts')).href);
      expect(loaded.text).toBe('createRequire(import.meta.url)');
      expect(loaded.version).toBe(1);
      // Cached: the same file, no build reported.
      expect((await bundledUrl(spec, 'QUANTSHIFT_TEST_BUNDLE_OFF', (line) => reports.push(line)))?.href).toBe(
        (first as URL).href,
      );
      expect(reports).toHaveLength(1);
      // A changed source, even one imported deeper, is a new build.
      writeFileSync(join(dir, 'deep', 'er', 'where.ts'), "export const where: string = 'moved';\n");
      const second = await bundledUrl(spec, 'QUANTSHIFT_TEST_BUNDLE_OFF', (line) => reports.push(line));
      expect(second?.href).not.toBe((first as URL).href);
      expect(reports).toHaveLength(2);
      expect(((await import((second as URL).href)) as Record<string, unknown>).there).toBe('moved');
      // Switched off by its variable: the caller runs the sources.
      process.env.QUANTSHIFT_TEST_BUNDLE_OFF = '0';
      expect(await bundledUrl(spec, 'QUANTSHIFT_TEST_BUNDLE_OFF')).toBeUndefined();
    } finally {
      delete process.env.QUANTSHIFT_TEST_BUNDLE_OFF;
      cleanUp();
    }
  });

  it('tells a failed build to its caller, which then runs the sources', async () => {
    const { dir, name, cleanUp } = scratch();
    try {
      writeFileSync(
        join(dir, 'entry.ts'),
        "import { nothing } from './missing.js';\nexport const x = nothing;\n",
      );
      const reports: string[] = [];
      const spec = sourceBundle(name, relative(ROOT, join(dir, 'entry.ts')));
      expect(
        await bundledUrl(spec, 'QUANTSHIFT_TEST_BUNDLE_OFF', (line) => reports.push(line)),
      ).toBeUndefined();
      expect(reports).toEqual([
        expect.stringMatching(/^could not bundle test\/.*entry\.ts \(.*\); running its sources through tsx$/),
      ]);
    } finally {
      cleanUp();
    }
  });

  it('removes only its own older builds, not those of a bundle whose name extends it', () => {
    expect(isBuildOf('bench-run', 'bench-run-0123456789abcdef')).toBe(true);
    expect(isBuildOf('bench-run', 'bench-run-0123456789abcdef.mjs')).toBe(true);
    expect(isBuildOf('bench', 'bench-run-0123456789abcdef')).toBe(false);
    expect(isBuildOf('bench-run', 'bench-run.json')).toBe(false);
    expect(isBuildOf('bench-run', 'bench-run.build')).toBe(false);
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
