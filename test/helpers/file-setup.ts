import { DEFAULT_PROVIDERS } from '@aws-lambda-powertools/parameters/base';
import { afterAll } from 'vitest';

/**
 * Test files share their worker's module cache (`isolate: false` in vitest.config.ts), so nothing a
 * file leaves in a module may reach the next one. Powertools keeps its default Secrets Manager
 * provider (and the client, with the endpoint of the file that first used it) in a module-level
 * map: each file starts without one and leaves none behind, as each environment variable it set.
 */
const env = { ...process.env };

function clearProviders(): void {
  for (const name of Object.keys(DEFAULT_PROVIDERS)) delete DEFAULT_PROVIDERS[name];
}

clearProviders();
afterAll(() => {
  clearProviders();
  for (const name of Object.keys(process.env)) if (!(name in env)) delete process.env[name];
  Object.assign(process.env, env);
});
