import { parseConfig, type StrategyConfig } from '../core/config/schema.js';

/**
 * A job's config (the JSON its spec carries), revalidated: it was valid when the job was made, but
 * every step checks it again. Apart from `common.ts`, so that the steps that never read the config
 * (check-cache, notify) do not bundle the config schema and the YAML parser.
 */
export function parseStoredConfig(raw: Record<string, unknown>, where: string): StrategyConfig {
  return parseConfig(JSON.stringify(raw), where);
}
