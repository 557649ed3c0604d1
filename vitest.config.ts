import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    // CDK synthesis in a beforeAll takes ~10 s on a loaded 2-core machine.
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
