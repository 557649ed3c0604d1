import { InvalidParameterError } from '../errors.js';
import { bollinger } from './bollinger.js';
import { breakout } from './breakout.js';
import { maCrossover } from './ma-crossover.js';
import { rsiReversion } from './rsi-reversion.js';
import type { StrategyDefinition } from './types.js';
import { volumeProfileStrategy } from './volume-profile.js';

export * from './bollinger.js';
export * from './breakout.js';
export * from './describe.js';
export * from './ma-crossover.js';
export * from './rsi-reversion.js';
export * from './rule.js';
export * from './types.js';
export * from './volume-profile.js';

/** Every strategy the CLI, the config and the live functions can name: one line each. */
const STRATEGIES = [
  maCrossover,
  rsiReversion,
  breakout,
  bollinger,
  volumeProfileStrategy,
] as unknown as readonly StrategyDefinition<never>[];

export const strategyRegistry: ReadonlyMap<string, StrategyDefinition<never>> = new Map(
  STRATEGIES.map((s) => [s.name, s]),
);

/** Looks a strategy up by name; the error lists the known names. */
export function getStrategy(name: string): StrategyDefinition<unknown> {
  const found = strategyRegistry.get(name);
  if (found === undefined) {
    throw new InvalidParameterError(
      `unknown strategy "${name}" (known: ${[...strategyRegistry.keys()].join(', ')})`,
    );
  }
  return found as StrategyDefinition<unknown>;
}
