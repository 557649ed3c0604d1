import {
  describeStrategy,
  type ParamInfo,
  type StrategyInfo,
  strategyRegistry,
} from '../core/strategies/index.js';
import type { StrategyDefinition } from '../core/strategies/types.js';
import { choiceFlag, type FlagSpecs, parseFlags, renderHelp } from './args.js';
import { renderTable } from './format.js';

const strategiesFlags: FlagSpecs = {
  format: {
    type: 'string',
    value: '<table|json>',
    help: 'stdout format (default table); json prints one array of { name, description, params, directions }',
  },
  help: { type: 'boolean', help: 'show this help' },
};

const strategiesHelp = renderHelp(
  'quantshift strategies [--format table|json]',
  'Lists every strategy the backtest, the research commands and the live functions can run, with its\nparameters (type, default, allowed values) and the directions it supports.',
  strategiesFlags,
  [
    'Examples:',
    '  quantshift strategies',
    '  quantshift backtest --data data/SPY.csv --strategy rsi-reversion --param period=14 --direction long-only',
  ],
);

/** Every registered strategy, described from its schema. */
function listStrategies(): StrategyInfo[] {
  return [...strategyRegistry.values()].map((s) => describeStrategy(s as StrategyDefinition<unknown>));
}

function allowed(p: ParamInfo): string {
  if (p.values !== undefined) return p.values.join(' | ');
  const bounds = [
    p.minimum === undefined ? undefined : `>= ${p.minimum}`,
    p.exclusiveMinimum === undefined ? undefined : `> ${p.exclusiveMinimum}`,
    p.maximum === undefined ? undefined : `<= ${p.maximum}`,
    p.exclusiveMaximum === undefined ? undefined : `< ${p.exclusiveMaximum}`,
  ].filter((b) => b !== undefined);
  return bounds.length === 0 ? 'any' : bounds.join(', ');
}

/** The table: per strategy, its description, directions and one row per parameter. */
function renderStrategies(list: readonly StrategyInfo[]): string {
  return list
    .map((s) =>
      [
        `${s.name}: ${s.description}`,
        `directions: ${s.directions.join(', ')}`,
        renderTable(
          ['Parameter', 'Type', 'Default', 'Allowed', 'Description'],
          s.params.map((p) => [
            p.name,
            p.type,
            p.default === null ? '-' : String(p.default),
            allowed(p),
            p.description,
          ]),
        ),
      ].join('\n'),
    )
    .join('\n\n')
    .replace(/ +$/gm, '')
    .concat('\n');
}

/** `quantshift strategies`: returns the process exit code. */
export function strategiesCommand(
  argv: readonly string[],
  io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream },
): number {
  const flags = parseFlags('strategies', argv, strategiesFlags);
  if (flags.help) {
    io.stdout.write(strategiesHelp);
    return 0;
  }
  const format = choiceFlag(flags, 'format', ['table', 'json'] as const) ?? 'table';
  const list = listStrategies();
  io.stdout.write(format === 'json' ? `${JSON.stringify(list)}\n` : renderStrategies(list));
  return 0;
}
