import { InvalidParameterError } from '../errors.js';
import { maCrossover } from './ma-crossover.js';
import type { StrategyDefinition } from './types.js';

export * from './ma-crossover.js';
export * from './types.js';

/** Every strategy the CLI, the config and the live functions can name. */
export const strategyRegistry: ReadonlyMap<string, StrategyDefinition<never>> = new Map<
  string,
  StrategyDefinition<never>
>([[maCrossover.name, maCrossover as StrategyDefinition<never>]]);

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
