/** Types of bundle-cache.mjs (plain JavaScript, so that it runs without a TypeScript loader). */

export interface EsbuildResult {
  outputFiles?: { contents: Uint8Array }[];
  metafile?: { inputs: Record<string, unknown> };
}

export interface EsbuildApi {
  readonly version: string;
  buildSync(options: Record<string, unknown>): EsbuildResult;
  build(options: Record<string, unknown>): Promise<EsbuildResult>;
}

/** One cached bundle: its name (file prefix and manifest), its entry (relative to the root), its build. */
export interface BundleSpec {
  readonly name: string;
  readonly entry: string;
  /** Bumped when the build options change, so that an older cached bundle is not reused. */
  readonly format: number;
  readonly esbuildOptions?: Readonly<Record<string, unknown>>;
  /** Each module sees its own source file as `import.meta.url` (needs {@link buildBundleAsync}). */
  readonly moduleUrls?: boolean;
}

export const ROOT: string;
export const CACHE_DIR: string;
export function loadEsbuild(): EsbuildApi | undefined;
export function cachedBundle(esbuild: EsbuildApi, spec: BundleSpec): string | undefined;
export function buildBundle(esbuild: EsbuildApi, spec: BundleSpec): string;
export function bundleFor(esbuild: EsbuildApi, spec: BundleSpec): string;
export function buildBundleAsync(esbuild: EsbuildApi, spec: BundleSpec): Promise<string>;
export function isBuildOf(name: string, file: string): boolean;
export function bundledUrl(
  spec: BundleSpec,
  disabledBy: string,
  report?: (line: string) => void,
): Promise<URL | undefined>;
export function sourceBundle(name: string, entry: string): BundleSpec;
