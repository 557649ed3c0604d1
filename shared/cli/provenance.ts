/**
 * The provenance every JSON document the CLI writes carries as top-level fields (docs/research.md):
 * when it was generated, how long the command took, the sha256 of the config, the code's git
 * commit and the resolved strategy parameters. One helper, used by every command.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type ParsedFlags, stringFlag } from '../research/flags.js';
import type { BacktestJob } from '../research/job.js';
import type { SleevesJob } from '../research/sleeves.js';

/** The top-level provenance fields of a CLI JSON document. */
export interface Provenance {
  readonly generatedAt: string;
  readonly elapsedMs: number;
  /** sha256 of the config file's bytes (of the resolved settings without one); null where no config applies. */
  readonly configHash: string | null;
  readonly gitCommit: string;
  /** The strategy parameters the run resolved (config, then flags); null where no strategy runs. */
  readonly params: Readonly<Record<string, unknown>> | null;
}

/** `git rev-parse HEAD` per working directory, asked once per process (a command asks several times). */
const commits = new Map<string, string>();

/** The code's git commit, for provenance: `QUANTSHIFT_COMMIT` (set in deployed functions), else git, else "unknown". */
export function gitCommit(): string {
  const fromEnv = process.env.QUANTSHIFT_COMMIT;
  if (fromEnv) return fromEnv;
  const cwd = process.cwd();
  let commit = commits.get(cwd);
  if (commit === undefined) {
    try {
      commit = execFileSync('git', ['rev-parse', 'HEAD'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    } catch {
      commit = 'unknown';
    }
    commits.set(cwd, commit);
  }
  return commit;
}

/** sha256 of the config file's bytes, or of the resolved settings when there is no config file. */
export function configHash(configPath: string | undefined, fallback: unknown): string {
  const hash = createHash('sha256');
  hash.update(configPath === undefined ? JSON.stringify(fallback) : readFileSync(configPath));
  return hash.digest('hex');
}

/** A clock started when a command starts; `provenance` reads the elapsed time from it. */
export function startClock(): { readonly startedMs: number } {
  return { startedMs: performance.now() };
}

/**
 * The provenance of a document written now. `configPath` is hashed when given; otherwise
 * `settings` (the resolved settings) are, when given; otherwise `configHash` is null.
 */
export function provenance(
  clock: { readonly startedMs: number },
  source: {
    readonly configPath?: string | undefined;
    readonly settings?: unknown;
    readonly params?: Readonly<Record<string, unknown>> | null;
  } = {},
): Provenance {
  const hashed =
    source.configPath !== undefined || source.settings !== undefined
      ? configHash(source.configPath, source.settings)
      : null;
  return {
    generatedAt: new Date().toISOString(),
    elapsedMs: Math.round(performance.now() - clock.startedMs),
    configHash: hashed,
    gitCommit: gitCommit(),
    params: source.params ?? null,
  };
}

/** The document with the provenance first, as top-level fields. */
export function withProvenance<T extends object>(meta: Provenance, document: T): Provenance & T {
  return { ...meta, ...document };
}

/** The provenance of a document about a resolved job: its config file (else its resolved settings) and params. */
export function jobProvenance(
  clock: { readonly startedMs: number },
  flags: ParsedFlags,
  job: BacktestJob,
): Provenance & { readonly configHash: string; readonly params: Readonly<Record<string, unknown>> } {
  return provenance(clock, {
    configPath: stringFlag(flags, 'config'),
    settings: { params: job.params, options: job.options },
    params: job.params,
  }) as Provenance & { configHash: string; params: Readonly<Record<string, unknown>> };
}

/** The provenance of a sleeves job: its config file, and each sleeve's resolved params by sleeve id. */
export function sleevesProvenance(
  clock: { readonly startedMs: number },
  flags: ParsedFlags,
  job: SleevesJob,
): Provenance & { readonly configHash: string; readonly params: Readonly<Record<string, unknown>> } {
  const params = Object.fromEntries(job.sleeves.map((s) => [s.id, s.params]));
  return provenance(clock, {
    configPath: stringFlag(flags, 'config'),
    settings: { params, options: job.options },
    params,
  }) as Provenance & { configHash: string; params: Readonly<Record<string, unknown>> };
}
