import { parse as parseYaml } from 'yaml';
import * as z from 'zod';
import { canonicalJson } from '../../core/canonical-json.js';
import { configSchema, equitySymbol, isoDate } from '../../core/config/schema.js';
import { ConfigError } from '../../core/errors.js';
import { type JobSpec, PipelineInputError, type PipelinePorts, sha256 } from '../common.js';
import { parseStoredConfig } from '../config.js';

/** What a user starts an execution with (console or `quantshift pipeline start`). */
export const pipelineInputSchema = z
  .object({
    /** The strategy config as JSON (the YAML config's structure). */
    config: z.record(z.string(), z.unknown()).optional(),
    /** Or the YAML text itself. */
    configYaml: z.string().min(1).optional(),
    /** Overrides the config's watchlist. */
    symbols: z.array(equitySymbol).min(1).optional(),
    /** Data range to fetch; defaults to the config's backtest range, or five years to yesterday. */
    from: isoDate.optional(),
    to: isoDate.optional(),
  })
  .strict()
  .refine((i) => (i.config === undefined) !== (i.configYaml === undefined), {
    message: 'give exactly one of config (JSON) or configYaml (text)',
    path: ['config'],
  });

export type PipelineInput = z.infer<typeof pipelineInputSchema>;

/** ValidateInput: the execution input → a job spec, or a failure listing every bad field. */
export function createValidateStep(ports: Pick<PipelinePorts, 'now' | 'gitCommit'>) {
  return async function validate(raw: unknown): Promise<JobSpec> {
    const problems: string[] = [];
    const parsed = pipelineInputSchema.safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues)
        problems.push(`${issue.path.join('.') || '(input)'}: ${issue.message}`);
    }
    // Check the config too, even when other fields are bad, so that one failure lists every bad field.
    const given = (raw !== null && typeof raw === 'object' ? raw : {}) as Partial<PipelineInput>;
    let configRaw: Record<string, unknown> = {};
    let configHash = '';
    if (typeof given.configYaml === 'string') {
      configHash = sha256(given.configYaml);
      try {
        configRaw = (parseYaml(given.configYaml) ?? {}) as Record<string, unknown>;
      } catch (error) {
        problems.push(`configYaml: not valid YAML: ${(error as Error).message.split('\n')[0]}`);
      }
    } else if (given.config !== null && typeof given.config === 'object') {
      configRaw = given.config as Record<string, unknown>;
      configHash = sha256(canonicalJson(configRaw));
    }
    const checked = configSchema.safeParse(configRaw);
    if (!checked.success) {
      for (const issue of checked.error.issues)
        problems.push(`config.${issue.path.join('.')}: ${issue.message}`);
    } else {
      try {
        parseStoredConfig(configRaw, 'config');
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        problems.push(error.message.replace(/^config: /, 'config.'));
      }
      if (checked.data.sleeves === undefined && checked.data.optimize?.space === undefined)
        problems.push('config.optimize: the pipeline needs a search grid');
    }
    const dates = parsed.success ? parsed.data : {};
    if (dates.from !== undefined && dates.to !== undefined && dates.from > dates.to)
      problems.push('from: is after to');
    if (problems.length > 0 || !parsed.success || !checked.success) {
      throw new PipelineInputError(`invalid pipeline input: ${problems.join('; ')}`);
    }
    const input = parsed.data;
    const config = checked.data;
    const today = ports.now();
    const yesterday = new Date(today.getTime() - 86_400_000).toISOString().slice(0, 10);
    const to = input.to ?? config.backtest.to ?? yesterday;
    const from = input.from ?? config.backtest.from ?? `${Number(to.slice(0, 4)) - 5}${to.slice(4)}`;
    const symbols = input.symbols ?? config.watchlist;
    const jobId = sha256(canonicalJson({ configHash, symbols, from, to, gitCommit: ports.gitCommit }));
    return {
      jobId,
      configHash,
      config: configRaw,
      symbols,
      from,
      to,
      gitCommit: ports.gitCommit,
      startedAt: today.toISOString(),
    };
  };
}
