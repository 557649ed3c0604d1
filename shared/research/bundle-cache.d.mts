/** Types of bundle-cache.mjs (plain JavaScript, so that it runs without a TypeScript loader). */

export interface EsbuildApi {
  readonly version: string;
  buildSync(options: Record<string, unknown>): {
    outputFiles?: { contents: Uint8Array }[];
    metafile?: { inputs: Record<string, unknown> };
  };
}

/** One cached bundle: its name (file prefix and manifest), its entry (relative to the root), its build. */
export interface BundleSpec {
  readonly name: string;
  readonly entry: string;
  /** Bumped when the build options change, so that an older cached bundle is not reused. */
  readonly format: number;
  readonly esbuildOptions?: Readonly<Record<string, unknown>>;
}

export const ROOT: string;
export const CACHE_DIR: string;
export function loadEsbuild(): EsbuildApi | undefined;
export function cachedBundle(esbuild: EsbuildApi, spec: BundleSpec): string | undefined;
export function buildBundle(esbuild: EsbuildApi, spec: BundleSpec): string;
export function bundleFor(esbuild: EsbuildApi, spec: BundleSpec): string;
