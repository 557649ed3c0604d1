import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * Every temp folder of a test run (the tests', the local servers', the CDK synths') goes under
 * test-results/tmp-*, git-ignored, and is removed when the run ends: nothing is left in /tmp.
 * The test processes inherit TMPDIR, which os.tmpdir() reads.
 */
export default function setup(): () => void {
  const root = resolve('test-results');
  mkdirSync(root, { recursive: true });
  const tmp = mkdtempSync(join(root, 'tmp-'));
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = tmp;
  return () => {
    rmSync(tmp, { recursive: true, force: true });
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
  };
}
