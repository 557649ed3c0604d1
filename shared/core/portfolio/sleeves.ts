import {
  AllocationWeightError,
  DuplicateSleeveIdError,
  SleeveSymbolsError,
  StrategyParamError,
  UnknownStrategyError,
} from '../errors.js';
import type { ParameterSpace } from '../research/grid.js';
import type { SizingSpec } from '../sizing/index.js';
import type { SizingConfig } from '../sizing/schema.js';
import { strategyRegistry } from '../strategies/index.js';
import type { Direction, StrategyDefinition } from '../strategies/types.js';
import type { SleeveConfig } from './config.js';

/** A sleeve resolved for a run: its strategy definition, validated parameters and weight bounds. */
export interface Sleeve {
  readonly id: string;
  readonly strategy: StrategyDefinition<unknown>;
  /** Validated parameters (the strategy's schema applied). */
  readonly params: unknown;
  readonly direction: Direction;
  readonly symbols: readonly string[];
  /** Target weight (normalized so the sleeves' weights sum to 1). */
  readonly weight: number;
  readonly minWeight: number;
  readonly maxWeight: number;
  /** Sizing of this sleeve's entries; absent: the account's. */
  readonly sizing?: SizingSpec;
  /** Per-trade risk overrides (the account-wide limits stay shared). */
  readonly risk?: {
    readonly riskPerTrade?: number;
    readonly maxPositionFraction?: number;
    readonly kellyFraction?: number;
  };
  /** The sleeve's research grid. */
  readonly space?: ParameterSpace;
}

const WEIGHT_EPS = 1e-9;

function strategyNamed(name: string, where: string): StrategyDefinition<unknown> {
  const found = strategyRegistry.get(name);
  if (found === undefined) {
    throw new UnknownStrategyError(
      `${where}: unknown strategy "${name}" (known: ${[...strategyRegistry.keys()].join(', ')})`,
    );
  }
  return found as StrategyDefinition<unknown>;
}

/** Validates a sleeve's parameters with its strategy's schema; errors name the sleeve and the key. */
export function validateSleeveParams(
  strategy: StrategyDefinition<unknown>,
  params: Readonly<Record<string, unknown>>,
  direction: Direction,
  where: string,
): unknown {
  if ('direction' in params) {
    throw new StrategyParamError(
      `${where}.params.direction: direction is an option of the sleeve, not a strategy parameter; move it to ${where}.direction`,
    );
  }
  if (!strategy.directions.includes(direction)) {
    throw new StrategyParamError(
      `${where}.direction: ${strategy.name} supports ${strategy.directions.join(', ')}`,
    );
  }
  const checked = strategy.params.safeParse(params);
  if (!checked.success) {
    const detail = checked.error.issues
      .map((i) => `${[`${where}.params`, ...i.path.map(String)].join('.')}: ${i.message}`)
      .join('; ');
    throw new StrategyParamError(detail, { cause: checked.error });
  }
  return checked.data;
}

/** Resolves sizing `atr-risk` without its own risk to the given default risk per trade. */
function resolveSizing(sizing: SizingConfig | undefined, riskPerTrade: number): SizingSpec | undefined {
  if (sizing === undefined) return undefined;
  return sizing.mode === 'atr-risk' ? { mode: 'atr-risk', risk: sizing.risk ?? riskPerTrade } : sizing;
}

/**
 * Checks and resolves a config's `sleeves:` list. Each broken rule is its own error class, naming
 * the file and the sleeve: an unknown strategy (the known ones listed), a reused id, a sleeve with no
 * symbols or one outside the watchlist, a parameter its strategy does not take, weights outside their
 * bounds, bounds that cannot sum to 1, or weights that sum to zero.
 */
export function resolveSleeves(
  sleeves: readonly SleeveConfig[],
  watchlist: readonly string[],
  file: string,
  riskPerTrade = 0.02,
): Sleeve[] {
  const seen = new Set<string>();
  const given = sleeves.filter((s) => s.weight !== undefined).length;
  if (given !== 0 && given !== sleeves.length) {
    throw new AllocationWeightError(
      `${file}: sleeves: give a weight to every sleeve or to none (equal weights); ${given} of ${sleeves.length} have one`,
    );
  }
  const rawWeights = sleeves.map((s) => s.weight ?? 1);
  const sum = rawWeights.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) {
    throw new AllocationWeightError(`${file}: sleeves: the weights sum to zero`);
  }
  const minSum = sleeves.reduce((a, s) => a + s.minWeight, 0);
  const maxSum = sleeves.reduce((a, s) => a + s.maxWeight, 0);
  if (minSum > 1 + WEIGHT_EPS || maxSum < 1 - WEIGHT_EPS) {
    throw new AllocationWeightError(
      `${file}: sleeves: the weight bounds cannot sum to 1 (minimums sum to ${minSum}, maximums to ${maxSum})`,
    );
  }
  const resolved = sleeves.map((sleeve, i) => {
    const where = `${file}: sleeves.${i} (${sleeve.id})`;
    if (seen.has(sleeve.id)) {
      throw new DuplicateSleeveIdError(`${where}: id "${sleeve.id}" is used by another sleeve`);
    }
    seen.add(sleeve.id);
    if (sleeve.symbols.length === 0) {
      throw new SleeveSymbolsError(`${where}.symbols: a sleeve needs at least one symbol`);
    }
    const symbols = sleeve.symbols.map((s) => s.trim().toUpperCase());
    const outside = symbols.filter((s) => !watchlist.includes(s));
    if (outside.length > 0) {
      throw new SleeveSymbolsError(`${where}.symbols: not in the watchlist: ${outside.join(', ')}`);
    }
    const repeated = symbols.filter((s, k) => symbols.indexOf(s) !== k);
    if (repeated.length > 0) {
      throw new SleeveSymbolsError(`${where}.symbols: listed twice: ${repeated.join(', ')}`);
    }
    const strategy = strategyNamed(sleeve.strategy, `${where}.strategy`);
    const params = validateSleeveParams(strategy, sleeve.params, sleeve.direction, `${file}: sleeves.${i}`);
    if (sleeve.minWeight > sleeve.maxWeight) {
      throw new AllocationWeightError(
        `${where}: minWeight ${sleeve.minWeight} is above maxWeight ${sleeve.maxWeight}`,
      );
    }
    const weight = (rawWeights[i] as number) / sum;
    if (weight < sleeve.minWeight - WEIGHT_EPS || weight > sleeve.maxWeight + WEIGHT_EPS) {
      throw new AllocationWeightError(
        `${where}.weight: ${Math.round(weight * 1e4) / 1e4} (normalized) is outside its bounds [${sleeve.minWeight}, ${sleeve.maxWeight}]`,
      );
    }
    const sizing = resolveSizing(sleeve.sizing, sleeve.risk?.riskPerTrade ?? riskPerTrade);
    return {
      id: sleeve.id,
      strategy,
      params,
      direction: sleeve.direction,
      symbols,
      weight,
      minWeight: sleeve.minWeight,
      maxWeight: sleeve.maxWeight,
      ...(sizing === undefined ? {} : { sizing }),
      ...(sleeve.risk === undefined ? {} : { risk: sleeve.risk }),
      ...(sleeve.optimize === undefined ? {} : { space: sleeve.optimize.space }),
    };
  });
  return resolved;
}

/** The config check: `parseConfig` calls it so a bad sleeves list fails when the file is read. */
export function checkSleeves(
  sleeves: readonly SleeveConfig[],
  watchlist: readonly string[],
  file: string,
): void {
  resolveSleeves(sleeves, watchlist, file);
}
