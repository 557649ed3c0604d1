import { vi } from 'vitest';

/**
 * Captures everything written to this process's stdout and stderr (the Powertools logs and EMF
 * lines of handlers run in-process) until `vi.restoreAllMocks()`. Returns what was written so far.
 */
export function captureProcessOutput(): () => string {
  let output = '';
  const write = (chunk: unknown) => {
    output += String(chunk);
    return true;
  };
  vi.spyOn(process.stdout, 'write').mockImplementation(write as never);
  vi.spyOn(process.stderr, 'write').mockImplementation(write as never);
  return () => output;
}
