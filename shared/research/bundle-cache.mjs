// Plain JavaScript (no TypeScript loader needed): `bin/start.mjs` uses it before any loader runs,
// and `worker-bundle.ts` uses it for the research workers. Types: bundle-cache.d.mts.
/**
 * A cached esbuild bundle of one TypeScript entry and everything it imports: built once into
 * `node_modules/.cache/quantshift/`, reused while the manifest (`<name>.json`: this esbuild's version,
 * the build format, and the sha256 of every input file) matches the current bytes, so a changed
 * source file rebuilds it on the next start and a run never uses stale code.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root (this file is two levels under it). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Where the bundles and their manifests are cached. */
export const CACHE_DIR = join(ROOT, 'node_modules', '.cache', 'quantshift');

/** How long an older build is kept after it was written. */
const STALE_AFTER_MS = 10 * 60_000;

/** esbuild's API, or undefined when it is not installed. */
export function loadEsbuild() {
  try {
    return createRequire(import.meta.url)('esbuild');
  } catch {
    return undefined;
  }
}

function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The cached bundle when its manifest matches this esbuild, the format and every input's current bytes. */
export function cachedBundle(esbuild, spec) {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(CACHE_DIR, `${spec.name}.json`), 'utf8'));
  } catch {
    return undefined;
  }
  if (manifest.format !== spec.format || manifest.esbuild !== esbuild.version) return undefined;
  for (const [input, hash] of Object.entries(manifest.inputs)) {
    try {
      if (sha256(readFileSync(join(ROOT, input))) !== hash) return undefined;
    } catch {
      return undefined;
    }
  }
  const file = join(CACHE_DIR, manifest.bundle);
  return existsSync(file) ? file : undefined;
}

/**
 * Builds the bundle into a folder named from its content (with code splitting on, a module reached
 * only by a dynamic import is a chunk of its own, loaded when imported), then writes the manifest
 * that points to the entry file and removes older builds.
 */
export function buildBundle(esbuild, spec) {
  const outdir = join(CACHE_DIR, `${spec.name}.build`);
  const result = esbuild.buildSync({
    entryPoints: [join(ROOT, spec.entry)],
    absWorkingDir: ROOT,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: `node${process.versions.node}`,
    write: false,
    metafile: true,
    outdir,
    outExtension: { '.js': '.mjs' },
    logLevel: 'silent',
    legalComments: 'none',
    ...spec.esbuildOptions,
  });
  const outputs = result.outputFiles ?? [];
  if (outputs.length === 0 || result.metafile === undefined) throw new Error('esbuild wrote no bundle');
  const inputs = {};
  for (const input of Object.keys(result.metafile.inputs)) {
    inputs[input] = sha256(readFileSync(join(ROOT, input)));
  }
  const digest = createHash('sha256');
  for (const output of outputs) digest.update(output.path).update(output.contents);
  const folder = `${spec.name}-${digest.digest('hex').slice(0, 16)}`;
  const entry = `${basename(spec.entry).replace(/\.[^.]+$/, '')}.mjs`;
  mkdirSync(join(CACHE_DIR, folder), { recursive: true });
  for (const output of outputs) {
    writeAtomically(join(CACHE_DIR, folder, relative(outdir, output.path)), output.contents);
  }
  const bundle = `${folder}/${entry}`;
  const manifest = { format: spec.format, esbuild: esbuild.version, bundle, inputs };
  writeAtomically(join(CACHE_DIR, `${spec.name}.json`), `${JSON.stringify(manifest, null, 1)}\n`);
  // Older builds go, unless written in the last minutes: a process started on one may still load
  // its chunks.
  for (const name of readdirSync(CACHE_DIR)) {
    const path = join(CACHE_DIR, name);
    if (name !== folder && name.startsWith(`${spec.name}-`) && /-[0-9a-f]{16}(\.mjs)?$/.test(name)) {
      if (statSync(path).mtimeMs < Date.now() - STALE_AFTER_MS)
        rmSync(path, { force: true, recursive: true });
    }
  }
  return join(CACHE_DIR, bundle);
}

/** The cached bundle, built when missing or stale. Throws when esbuild fails or the cache cannot be written. */
export function bundleFor(esbuild, spec) {
  return cachedBundle(esbuild, spec) ?? buildBundle(esbuild, spec);
}

/** Writes through a unique temporary file and a rename, so a concurrent reader never sees half a file. */
function writeAtomically(file, contents) {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temporary, contents);
  renameSync(temporary, file);
}
