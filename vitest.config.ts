import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    // A beforeAll that synthesizes a CDK app takes ~4 s idle, several times that on a loaded 2-core machine.
    hookTimeout: 60_000,
    pool: 'forks',
    // Temp folders under test-results/ (git-ignored), removed at the end of the run.
    globalSetup: ['test/helpers/global-setup.ts'],
    env: {
      // The AWS SDK is pinned to its last releases for Node 20 on purpose (as the CLI, bin/quantshift.js).
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  },
});
