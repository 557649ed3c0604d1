/** Where the benchmarks' JSON document goes (`npm run bench`). */
import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Writes the document to bench/results.json, and to stdout only where npm prints no banner there
 * (`npm run -s bench`, or not run by npm at all).
 */
export function writeBenchResults(
  document: unknown,
  path = fileURLToPath(new URL('./results.json', import.meta.url)),
  env: NodeJS.ProcessEnv = process.env,
): void {
  const text = `${JSON.stringify(document, null, 2)}\n`;
  writeFileSync(path, text);
  const underNpm = env.npm_lifecycle_event !== undefined;
  const silent = env.npm_config_loglevel === 'silent';
  if (!underNpm || silent) process.stdout.write(text);
  process.stderr.write(
    `bench: wrote ${relative(process.cwd(), path)}${underNpm && !silent ? ' (npm run -s bench also prints it on stdout)' : ''}\n`,
  );
}
