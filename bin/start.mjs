// `npm start`: the CLI from a cached esbuild bundle (shared/research/bundle-cache.mjs), rebuilt when
// any source file changed, instead of compiling every TypeScript module through tsx at each start
// (tsx's loader thread and its `keepNames` wrappers cost CPU on the 2-core machine the research job
// runs on). Without esbuild, or when the cache cannot be written, or with QUANTSHIFT_CLI_BUNDLE=0,
// it runs bin/quantshift.ts through tsx, with the same output.
import { bundledUrl } from '../shared/research/bundle-cache.mjs';

/**
 * Every module of the bundle sees `import.meta.url` as a file in shared/research/, two levels under
 * the root like the sources that read it (the CLI's package.json, the workers' bundle, require).
 */
const CLI_BUNDLE = {
  name: 'quantshift-cli',
  entry: 'bin/quantshift.ts',
  format: 1,
  esbuildOptions: {
    packages: 'external',
    splitting: true,
    define: { 'import.meta.url': 'QUANTSHIFT_SOURCE_URL' },
    banner: {
      js: "const QUANTSHIFT_SOURCE_URL = new URL('../../../../shared/research/cli-bundle.mjs', import.meta.url).href;",
    },
  },
};

const bundle = await bundledUrl(CLI_BUNDLE, 'QUANTSHIFT_CLI_BUNDLE');
if (bundle !== undefined) {
  await import(bundle.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./quantshift.ts');
}
