import { fileURLToPath } from 'node:url';

/** The repository root (the folder holding package.json, cdk.json and functions/). */
export const repoRoot: string = fileURLToPath(new URL('..', import.meta.url));

/** An absolute path inside the repository, from `/`-separated parts. */
export function repoPath(...parts: string[]): string {
  return fileURLToPath(new URL(parts.join('/'), new URL('../', import.meta.url)));
}
