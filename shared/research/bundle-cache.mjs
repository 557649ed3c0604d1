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
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

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

/** esbuild's options for the bundle of `spec` (without the plugin of `moduleUrls`, see {@link buildBundleAsync}). */
function buildOptions(spec) {
  return {
    entryPoints: [join(ROOT, spec.entry)],
    absWorkingDir: ROOT,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: `node${process.versions.node}`,
    write: false,
    metafile: true,
    outdir: join(CACHE_DIR, `${spec.name}.build`),
    outExtension: { '.js': '.mjs' },
    logLevel: 'silent',
    legalComments: 'none',
    ...spec.esbuildOptions,
  };
}

/**
 * Builds the bundle into a folder named from its content (with code splitting on, a module reached
 * only by a dynamic import is a chunk of its own, loaded when imported), then writes the manifest
 * that points to the entry file and removes older builds. A spec with `moduleUrls` needs esbuild's
 * plugins, which only its asynchronous API runs: {@link buildBundleAsync}.
 */
export function buildBundle(esbuild, spec) {
  if (spec.moduleUrls === true) throw new Error(`bundle ${spec.name}: moduleUrls needs buildBundleAsync`);
  const started = Date.now();
  return writeBuild(esbuild, spec, esbuild.buildSync(buildOptions(spec)), started);
}

/** {@link buildBundle} through esbuild's asynchronous API, which runs the plugin of `moduleUrls`. */
export async function buildBundleAsync(esbuild, spec) {
  const options = buildOptions(spec);
  const own = spec.moduleUrls === true ? moduleUrlOptions(options) : {};
  const started = Date.now();
  return writeBuild(esbuild, spec, await esbuild.build({ ...options, ...own }), started);
}

/** Files esbuild reads besides the modules (its TypeScript settings): a change rebuilds too. */
const SETTINGS_INPUTS = ['tsconfig.json', 'package.json'];

function writeBuild(esbuild, spec, result, started) {
  const outdir = join(CACHE_DIR, `${spec.name}.build`);
  const outputs = result.outputFiles ?? [];
  if (outputs.length === 0 || result.metafile === undefined) throw new Error('esbuild wrote no bundle');
  const inputs = {};
  // A source saved while esbuild ran may not be the bytes it bundled: the manifest is then not
  // written (this run uses the build, the next one builds again).
  let changedDuringBuild = false;
  for (const input of [...Object.keys(result.metafile.inputs), ...SETTINGS_INPUTS]) {
    const path = join(ROOT, input);
    if (!existsSync(path)) continue;
    if (statSync(path).mtimeMs >= started) changedDuringBuild = true;
    inputs[input] = sha256(readFileSync(path));
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
  if (!changedDuringBuild) {
    writeAtomically(join(CACHE_DIR, `${spec.name}.json`), `${JSON.stringify(manifest, null, 1)}\n`);
  }
  // Older builds go, unless written in the last minutes: a process started on one may still load
  // its chunks.
  for (const name of readdirSync(CACHE_DIR)) {
    const path = join(CACHE_DIR, name);
    if (name !== folder && isBuildOf(spec.name, name)) {
      try {
        if (statSync(path).mtimeMs < Date.now() - STALE_AFTER_MS)
          rmSync(path, { force: true, recursive: true });
      } catch {
        // Removed by another process meanwhile: nothing to do.
      }
    }
  }
  return join(CACHE_DIR, bundle);
}

/** Whether `file` (a name in the cache folder) is a build of the bundle `name` (not of one whose name extends it). */
export function isBuildOf(name, file) {
  return file.startsWith(`${name}-`) && /^[0-9a-f]{16}(\.mjs)?$/.test(file.slice(name.length + 1));
}

/**
 * The bundle's output files sit four levels under the root (`node_modules/.cache/quantshift/<build>/`):
 * a module's source file, as a URL relative to the output file that holds it.
 */
const FROM_BUILD_TO_ROOT = '../../../../';

/**
 * Build options that give every bundled module its own `import.meta.url`: the URL of its source file
 * (esbuild gives each the output file's, so `new URL('./x.json', import.meta.url)` in
 * `bench/results.ts` and `new URL('..', import.meta.url)` in `lib/paths.ts` would miss their files).
 * Each output file records its own URL in a banner; a module that reads `import.meta.url` gets a
 * first line that resolves its source's path from there (esbuild renames the per-module constants
 * apart), and `define` points its `import.meta.url` to that constant. A relative URL, so a checkout
 * moved with its cache still resolves its own files.
 */
function moduleUrlOptions(esbuildOptions) {
  const ownUrl = {
    name: 'quantshift-module-url',
    setup(build) {
      build.onLoad({ filter: /\.(?:[cm]?ts|[cm]?js)$/ }, (args) => {
        const source = readFileSync(args.path, 'utf8');
        if (!source.includes('import.meta.url')) return undefined;
        const url = `${FROM_BUILD_TO_ROOT}${relative(ROOT, args.path).split('\\').join('/')}`;
        const line = `const QUANTSHIFT_MODULE_URL = new URL(${JSON.stringify(url)}, QUANTSHIFT_BUNDLE_URL).href;`;
        const loader = /\.[cm]?ts$/.test(args.path) ? 'ts' : 'js';
        return { contents: `${line}\n${source}`, loader, resolveDir: dirname(args.path) };
      });
    },
  };
  const banner = esbuildOptions.banner?.js;
  return {
    plugins: [...(esbuildOptions.plugins ?? []), ownUrl],
    define: { ...esbuildOptions.define, 'import.meta.url': 'QUANTSHIFT_MODULE_URL' },
    banner: {
      ...esbuildOptions.banner,
      js: `const QUANTSHIFT_BUNDLE_URL = import.meta.url;${banner === undefined ? '' : `\n${banner}`}`,
    },
  };
}

/**
 * The file URL of the bundle of `spec`, built when missing or stale, or undefined when the
 * environment variable `disabledBy` is `0`, esbuild is not installed or the build or the cache fails
 * (the caller then runs the TypeScript sources through tsx, with the same results). `report` hears
 * a build's time and a failure's reason.
 */
export async function bundledUrl(spec, disabledBy, report = () => {}) {
  if (process.env[disabledBy] === '0') return undefined;
  const esbuild = loadEsbuild();
  if (esbuild === undefined) return undefined;
  try {
    const cached = cachedBundle(esbuild, spec);
    if (cached !== undefined) return pathToFileURL(cached);
    const started = process.hrtime.bigint();
    const built = await buildBundleAsync(esbuild, spec);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    report(`built the ${spec.name} bundle (${spec.entry}) in ${seconds.toFixed(1)} s`);
    return pathToFileURL(built);
  } catch (error) {
    const reason = String(error?.message ?? error).replace(/\s*\n\s*/g, ' ');
    report(`could not bundle ${spec.entry} (${reason}); running its sources through tsx`);
    return undefined;
  }
}

/**
 * One bundle of the project's own code as it runs in production (a Lambda bundle, `npm start`):
 * esbuild's output without tsx's `keepNames` wrappers, the packages loaded from node_modules, each
 * module with its own `import.meta.url`.
 */
export function sourceBundle(name, entry) {
  return { name, entry, format: 1, moduleUrls: true, esbuildOptions: { packages: 'external' } };
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
