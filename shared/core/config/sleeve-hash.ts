import { canonicalJson, sha256Hex } from '../canonical-json.js';
import { ConfigError } from '../errors.js';
import { liveSleeveIds, type StrategyConfig } from './schema.js';

/** A sleeve id the config does not have (a `--sleeve` flag, a validation request). */
export class UnknownSleeveError extends ConfigError {}

/**
 * The account settings every sleeve's results depend on: its validation covers them, so editing
 * one of them closes every sleeve's gate. Not the other sleeves, not the live limits, the
 * walk-forward settings or the criteria (they decide how a sleeve is judged, not what it trades).
 */
export const SLEEVE_ACCOUNT_KEYS = [
  'assetClass',
  'costs',
  'risk',
  'sizing',
  'backtest',
  'allocation',
  'sleeveCorrelation',
] as const satisfies readonly (keyof StrategyConfig)[];

/** Throws {@link UnknownSleeveError} unless `sleeveId` is one of the config's live sleeves. */
export function checkSleeveId(config: StrategyConfig, sleeveId: string): void {
  const known = liveSleeveIds(config);
  if (!known.includes(sleeveId)) {
    throw new UnknownSleeveError(
      `${config.name}: no sleeve "${sleeveId}"; the config's sleeves are ${known.join(', ')}`,
    );
  }
}

/**
 * What a sleeve's validation covers: its own block (a sleeves config's `sleeves[i]`; a
 * single-strategy config's `strategy:` block with the watchlist it trades) and the account
 * settings it depends on ({@link SLEEVE_ACCOUNT_KEYS}), as the parsed config has them (defaults
 * filled in): comments, key order and formatting of the file change nothing.
 */
export function sleeveValidationScope(config: StrategyConfig, sleeveId: string): unknown {
  checkSleeveId(config, sleeveId);
  const account = Object.fromEntries(SLEEVE_ACCOUNT_KEYS.map((key) => [key, config[key]]));
  const sleeve =
    config.sleeves === undefined
      ? { strategy: config.strategy, watchlist: config.watchlist }
      : config.sleeves.find((s) => s.id === sleeveId);
  return { account, sleeve };
}

/**
 * The sleeve's hash: SHA-256 (hex) of the canonical JSON of {@link sleeveValidationScope}. The
 * validation record of a sleeve carries it, and the live stage compares it with the deployed
 * config's: editing one sleeve closes only that sleeve's gate; editing an account setting closes all.
 */
export function sleeveHash(config: StrategyConfig, sleeveId: string): string {
  return sha256Hex(canonicalJson(sleeveValidationScope(config, sleeveId)));
}
