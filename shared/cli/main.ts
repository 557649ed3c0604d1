import { readFileSync } from 'node:fs';
import { QuantShiftError, UsageError } from '../core/errors.js';
import { gitCommit } from './provenance.js';

/** The environment the operator commands read (STATE_TABLE, DYNAMODB_ENDPOINT, ...); default process.env. */
type Env = Readonly<Record<string, string | undefined>>;

/** The streams a command writes to; `process` fits. */
export type Io = {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
};

const commands: Record<
  string,
  {
    summary: string;
    run: (argv: readonly string[], io: Io, env: Env) => number | Promise<number>;
  }
> = {
  backtest: {
    summary: 'backtest a strategy on bar CSVs (decide at the close, fill at the next open)',
    run: async (argv, io) => (await import('./backtest.js')).backtestCommand(argv, io),
  },
  strategies: {
    summary: 'list the strategies with their parameters and directions (--format json)',
    run: async (argv, io) => (await import('./strategies.js')).strategiesCommand(argv, io),
  },
  research: {
    summary: 'the whole research job: backtest, walk-forward, parameter surface, HTML report (npm start)',
    run: async (argv, io) => (await import('./research-job.js')).researchCommand(argv, io),
  },
  replay: {
    summary: 'run the live functions day by day against the local paper broker, DynamoDB and Redis',
    run: async (argv, io) => (await import('./replay.js')).replayCommand(argv, io),
  },
  'validate-paper': {
    summary:
      'paper trading against its shadow backtest, execution quality, and the go/no-go of the live gate',
    run: async (argv, io, env) => (await import('./validate-paper.js')).validatePaperCommand(argv, io, env),
  },
  local: {
    summary: 'local up: start the local paper broker, DynamoDB and Redis and print their environment',
    run: async (argv, io) => (await import('./local.js')).localCommand(argv, io),
  },
  stream: {
    summary: 'the market-data stream consumer (stream --local --replay <file>: against the local stack)',
    run: async (argv, io) => (await import('./stream.js')).streamCommand(argv, io),
  },
  invoke: {
    summary: 'run one live handler locally against the local stack (invoke <function> --event <file>)',
    run: async (argv, io) => (await import('./local.js')).invokeCommand(argv, io),
  },
  halt: {
    summary: 'set the kill switch: block new entries (exits and stops go on), with who and why',
    run: async (argv, io, env) => (await import('./operate.js')).haltCommand(argv, io, env),
  },
  resume: {
    summary: 'clear the kill switch (resume --reason "..."), recorded with who and why',
    run: async (argv, io, env) => (await import('./operate.js')).resumeCommand(argv, io, env),
  },
  status: {
    summary: 'show the kill switch, the breakers and the recent operator actions',
    run: async (argv, io, env) => (await import('./operate.js')).statusCommand(argv, io, env),
  },
  reconcile: {
    summary: 'broker vs sleeves per symbol; --assign SLEEVE / --flatten the UNASSIGNED bucket (who and why)',
    run: async (argv, io, env) => (await import('./reconcile.js')).reconcileCommand(argv, io, env),
  },
  pipeline: {
    summary: 'start the deployed walk-forward pipeline (execution named from a hash of the input)',
    run: async (argv, io) => (await import('./pipeline.js')).pipelineCommand(argv, io),
  },
  data: {
    summary: 'fetch daily bars from Alpaca into <SYMBOL>.csv files (data fetch --symbols ...)',
    run: async (argv, io) => (await import('./data.js')).dataCommand(argv, io),
  },
  optimize: {
    summary: 'grid-search strategy parameters, ranked by an objective (worker threads)',
    run: async (argv, io) => (await import('./research.js')).optimizeCommand(argv, io),
  },
  'walk-forward': {
    summary: 'walk-forward analysis per symbol and for the portfolio, with a go/refine decision',
    run: async (argv, io) => (await import('./research.js')).walkForwardCommand(argv, io),
  },
};

const nameWidth = Math.max(...Object.keys(commands).map((name) => name.length)) + 2;

const mainHelp = `Usage: quantshift <command> [flags]

Commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(nameWidth)}${c.summary}`)
  .join('\n')}

Flags:
  ${'--version'.padEnd(nameWidth)}print the version and the git commit
  ${'--help'.padEnd(nameWidth)}show this help

Run "quantshift <command> --help" for a command's flags.
`;

/** `quantshift --version`: the package's version and the code's commit. */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return `quantshift ${pkg.version} (commit ${gitCommit().slice(0, 12)})\n`;
}

async function dispatch(argv: readonly string[], io: Io, env: Env): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(mainHelp);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    io.stdout.write(version());
    return 0;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (command === undefined)
    throw new UsageError(`unknown command "${name}" (commands: ${Object.keys(commands).join(', ')})`);
  return command.run(rest, io, env);
}

/**
 * Runs the CLI and returns its exit code: 0 on success, 2 for a usage error (a flag, a value or an
 * argument it does not take), 1 for any other failure, printed as one `error: ...` line on stderr
 * (a stack trace only with QUANTSHIFT_DEBUG=1).
 */
export async function runCli(
  argv: readonly string[],
  io: Io = process,
  env: Env = process.env,
): Promise<number> {
  try {
    return await dispatch(argv, io, env);
  } catch (error) {
    if (error instanceof QuantShiftError) {
      io.stderr.write(`error: ${error.message}\n`);
    } else {
      io.stderr.write(`error: unexpected failure: ${(error as Error)?.message ?? String(error)}\n`);
    }
    if (process.env.QUANTSHIFT_DEBUG === '1') io.stderr.write(`${(error as Error)?.stack ?? ''}\n`);
    return error instanceof UsageError ? 2 : 1;
  }
}
