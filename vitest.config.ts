import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    pool: 'forks',
    // Temp folders under test-results/ (git-ignored), removed at the end of the run.
    globalSetup: ['test/helpers/global-setup.ts'],
    env: {
      // The AWS SDK is pinned to its last releases for Node 20 on purpose (as the CLI, bin/quantshift.js).
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  },
});
