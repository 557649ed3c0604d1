import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    // A beforeAll that synthesizes a CDK app takes ~4 s idle, several times that on a loaded 2-core machine.
    hookTimeout: 60_000,
    pool: 'forks',
    // Vitest's default on 2 cores is one worker; most files wait on local servers, child processes
    // and Chromium, so three workers keep both cores busy (about 160 s instead of 325 s here).
    maxWorkers: 3,
    // Files share their worker's module cache instead of importing the CDK, the AWS SDK and the
    // core again for each file (the import phase was 95 of 160 s). test/helpers/file-setup.ts
    // clears what a file could leave behind in a module (Powertools' providers, environment).
    isolate: false,
    setupFiles: ['test/helpers/file-setup.ts'],
    // Temp folders under test-results/ (git-ignored), removed at the end of the run.
    globalSetup: ['test/helpers/global-setup.ts'],
    env: {
      // The AWS SDK is pinned to its last releases for Node 20 on purpose (as the CLI, bin/quantshift.js).
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  },
});
