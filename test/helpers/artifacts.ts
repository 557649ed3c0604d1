import { mkdirSync, mkdtempSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * The git-ignored folder test artifacts go to (`test-results/`, in the checkout), never /tmp and
 * never a tracked folder. Each call gives a fresh subfolder named after `name`; the caller removes
 * it when done (a screenshot worth keeping stays, under test-results/).
 */
export const TEST_RESULTS = resolve('test-results');

export function testArtifactDir(name: string): string {
  mkdirSync(TEST_RESULTS, { recursive: true });
  return mkdtempSync(join(TEST_RESULTS, `${name}-`));
}
