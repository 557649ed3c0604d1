import { backtestCommand, backtestHelp } from '../shared/cli/backtest.js';
import { dataCommand } from '../shared/cli/data.js';
import { invokeCommand, localCommand } from '../shared/cli/local.js';
import { haltCommand, resumeCommand, statusCommand } from '../shared/cli/operate.js';
import { pipelineCommand } from '../shared/cli/pipeline.js';
import { replayCommand } from '../shared/cli/replay.js';
import { optimizeCommand, walkForwardCommand } from '../shared/cli/research.js';
import { researchCommand } from '../shared/cli/research-job.js';
import { strategiesCommand } from '../shared/cli/strategies.js';
import { QuantShiftError, UsageError } from '../shared/core/errors.js';

const commands: Record<
  string,
  { summary: string; run: (argv: readonly string[]) => number | Promise<number> }
> = {
  backtest: {
    summary: 'backtest a strategy on bar CSVs (decide at the close, fill at the next open)',
    run: (argv) => backtestCommand(argv, process),
  },
  strategies: {
    summary: 'list the strategies with their parameters and directions (--format json)',
    run: (argv) => strategiesCommand(argv, process),
  },
  research: {
    summary: 'the whole research job: backtest, walk-forward, parameter surface, HTML report (npm start)',
    run: (argv) => researchCommand(argv, process),
  },
  replay: {
    summary: 'run the live functions day by day against the local paper broker, DynamoDB and Redis',
    run: (argv) => replayCommand(argv, process),
  },
  local: {
    summary: 'local up: start the local paper broker, DynamoDB and Redis and print their environment',
    run: (argv) => localCommand(argv, process),
  },
  invoke: {
    summary: 'run one live handler locally against the local stack (invoke <function> --event <file>)',
    run: (argv) => invokeCommand(argv, process),
  },
  halt: {
    summary: 'set the kill switch: block new entries (exits and stops go on), with who and why',
    run: (argv) => haltCommand(argv, process),
  },
  resume: {
    summary: 'clear the kill switch (resume --reason "..."), recorded with who and why',
    run: (argv) => resumeCommand(argv, process),
  },
  status: {
    summary: 'show the kill switch, the breakers and the recent operator actions',
    run: (argv) => statusCommand(argv, process),
  },
  pipeline: {
    summary: 'start the deployed walk-forward pipeline (execution named from a hash of the input)',
    run: (argv) => pipelineCommand(argv, process),
  },
  data: {
    summary: 'fetch daily bars from Alpaca into <SYMBOL>.csv files (data fetch --symbols ...)',
    run: (argv) => dataCommand(argv, process),
  },
  optimize: {
    summary: 'grid-search strategy parameters, ranked by an objective (worker threads)',
    run: (argv) => optimizeCommand(argv, process),
  },
  'walk-forward': {
    summary: 'walk-forward analysis per symbol and for the portfolio, with a go/refine decision',
    run: (argv) => walkForwardCommand(argv, process),
  },
};

const mainHelp = `Usage: quantshift <command> [flags]

Commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(12)}${c.summary}`)
  .join('\n')}

Run "quantshift <command> --help" for a command's flags.
`;

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp);
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (command === undefined)
    throw new UsageError(`unknown command "${name}" (commands: ${Object.keys(commands).join(', ')})`);
  return command.run(rest);
}

/** One clear line and a non-zero exit for every known failure; a stack trace only with QUANTSHIFT_DEBUG=1. */
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const debug = process.env.QUANTSHIFT_DEBUG === '1';
    if (error instanceof QuantShiftError) {
      process.stderr.write(`error: ${error.message}\n`);
    } else {
      process.stderr.write(`error: unexpected failure: ${(error as Error)?.message ?? String(error)}\n`);
    }
    if (debug) process.stderr.write(`${(error as Error)?.stack ?? ''}\n`);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  },
);

export { backtestHelp };
