import { execFileSync } from 'node:child_process';
import type { IConstruct } from 'constructs';
import { repoRoot } from './paths.js';

/** The context key that overrides the commit found with git (`-c commit=<sha>`). */
export const COMMIT_CONTEXT_KEY = 'commit';

/** The code's commit could not be determined, or the one given is not usable. */
export class CommitError extends Error {
  override readonly name = 'CommitError';
}

const COMMIT_PATTERN = /^[0-9A-Za-z._-]{1,64}$/;
let gitHead: string | undefined;

function readGitHead(): string {
  if (gitHead !== undefined) return gitHead;
  try {
    gitHead = execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: repoRoot,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
  } catch (error) {
    const detail = (error as { stderr?: string }).stderr?.trim() || (error as Error).message;
    throw new CommitError(
      `cannot find the code's commit (git rev-parse HEAD in ${repoRoot}: ${detail}): pass -c commit=<sha>`,
      { cause: error },
    );
  }
  return gitHead;
}

/**
 * The code's commit, which every function gets as `QUANTSHIFT_COMMIT` (the pipeline's job ids
 * include it): the `commit` context value when given, else `git rev-parse HEAD` at synth time.
 */
export function resolveCommit(scope: IConstruct): string {
  const given: unknown = scope.node.tryGetContext(COMMIT_CONTEXT_KEY);
  const commit = given === undefined || given === null ? readGitHead() : given;
  if (typeof commit !== 'string' || !COMMIT_PATTERN.test(commit)) {
    throw new CommitError(
      `commit ${JSON.stringify(commit)}: expected a git commit (letters, digits, '.', '_' or '-', at most 64)`,
    );
  }
  return commit;
}
