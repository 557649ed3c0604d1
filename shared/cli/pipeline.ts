import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { FolderMarketData } from '../adapters/fs/market-data.js';
import { FolderObjectStore } from '../adapters/local/folder-store.js';
import { ListNotifier } from '../adapters/local/list-notifier.js';
import { strategyParams } from '../core/config/schema.js';
import { UsageError } from '../core/errors.js';
import { formatBarTime } from '../core/market/types.js';
import { parseStoredConfig } from '../pipeline/config.js';
import { runPipelineLocally } from '../pipeline/local-runner.js';
import { createPipelineSteps, type PipelineSummary } from '../pipeline/steps.js';
import { type FlagSpecs, parseFlags, renderHelp, stringFlag, wantsHelp } from './args.js';
import type { BacktestJob } from './backtest.js';
import { gitCommit, provenance, startClock, withProvenance } from './provenance.js';
import type { WalkForwardDocument } from './research.js';

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };

/** Flags the pipeline takes: it runs the config as it is (no ad hoc overrides). */
const PIPELINE_FLAGS = new Set([
  'config',
  'symbol',
  'format',
  'out',
  'engine',
  'workers',
  'help',
  'state-dir',
]);

/** The pipeline's execution input for a config file, its symbols and the span of the loaded bars. */
export function pipelineInput(configPath: string, job: Pick<BacktestJob, 'series'>) {
  const first = Math.min(...job.series.map((s) => s.time[0] as number));
  const last = Math.max(...job.series.map((s) => s.time[s.time.length - 1] as number));
  return {
    configYaml: readFileSync(configPath, 'utf8'),
    symbols: job.series.map((s) => s.symbol),
    from: formatBarTime(first, false),
    to: formatBarTime(last, false),
  };
}

/**
 * `quantshift walk-forward --engine stepfunctions`: runs the synthesized state machine with
 * aws-local-stepfunctions, its Task states on the same step code as the deployed functions, with a
 * folder standing in for S3 and a list for SNS. Returns the document the Aggregate step wrote.
 */
export async function walkForwardOnLocalPipeline<D = WalkForwardDocument>(
  flags: Record<string, unknown>,
  job: Pick<BacktestJob, 'series' | 'config'>,
  io: Io,
): Promise<D> {
  const extra = Object.keys(flags).filter((name) => flags[name] !== undefined && !PIPELINE_FLAGS.has(name));
  if (extra.length > 0) {
    throw new UsageError(
      `--engine stepfunctions runs the config as the pipeline would; drop ${extra.map((n) => `--${n}`).join(', ')}`,
    );
  }
  const configPath = stringFlag(flags as never, 'config');
  if (configPath === undefined || job.config === undefined) {
    throw new UsageError('--engine stepfunctions needs --config');
  }
  const stateDir = stringFlag(flags as never, 'state-dir') ?? join(tmpdir(), 'quantshift-pipeline');
  const store = new FolderObjectStore(stateDir);
  const notifier = new ListNotifier((line) => io.stderr.write(`pipeline: notification ${line}\n`));
  const steps = createPipelineSteps({
    store,
    notifier,
    now: () => new Date(),
    gitCommit: gitCommit(),
    distributedThreshold: Number.POSITIVE_INFINITY,
    marketData: async () => new FolderMarketData(job.config?.data.dir ?? 'data'),
  });
  const { synthesizePipelineDefinition } = await import('../../lib/pipeline-definition.js');
  io.stderr.write('pipeline: synthesizing the state machine\n');
  const definition = await synthesizePipelineDefinition();
  io.stderr.write(`pipeline: running it locally (state in ${stateDir})\n`);
  const { output } = await runPipelineLocally(definition, pipelineInput(configPath, job), steps);
  const summary = output as PipelineSummary;
  const text = await store.getText(summary.documentKey);
  if (text === undefined)
    throw new UsageError(`the pipeline finished without its document (${summary.documentKey})`);
  return JSON.parse(text) as D;
}

const pipelineStartFlags: FlagSpecs = {
  config: {
    type: 'string',
    value: '<yaml>',
    help: 'strategy config with an optimize section (sent as configYaml)',
  },
  symbol: { type: 'string', value: '<SYM[,SYM...]>', help: 'symbols (default: the config watchlist)' },
  from: { type: 'string', value: '<YYYY-MM-DD>', help: 'first day of data to fetch' },
  to: { type: 'string', value: '<YYYY-MM-DD>', help: 'last day of data to fetch' },
  'state-machine-arn': {
    type: 'string',
    value: '<arn>',
    help: 'the pipeline (stack output StateMachineArn)',
  },
  region: { type: 'string', value: '<region>', help: 'AWS region (default: from the ARN)' },
  help: { type: 'boolean', help: 'show this help' },
};

/** A Step Functions client's `send`, as much as `pipeline start` uses (a fake stands in for it in tests). */
export interface SfnSender {
  send(command: StartExecutionCommand | DescribeExecutionCommand): Promise<unknown>;
}

/**
 * `quantshift pipeline start`: starts the deployed pipeline with the execution named from a hash
 * of the input, so a repeated start of the same input is refused by Step Functions and reported as
 * the existing execution (whose stored result the workflow returns anyway).
 */
export async function pipelineCommand(argv: readonly string[], io: Io, client?: SfnSender): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'start' && !wantsHelp(argv))
    throw new UsageError('usage: quantshift pipeline start --config <yaml> --state-machine-arn <arn>');
  const flags = parseFlags('pipeline start', sub === 'start' ? rest : argv, pipelineStartFlags);
  if (flags.help) {
    io.stdout.write(
      renderHelp(
        'quantshift pipeline start --config <yaml> --state-machine-arn <arn>',
        'Starts the deployed walk-forward pipeline; the execution is named from a hash of the input.',
        pipelineStartFlags,
      ),
    );
    return 0;
  }
  const clock = startClock();
  const configPath = stringFlag(flags, 'config');
  const arn = stringFlag(flags, 'state-machine-arn');
  if (configPath === undefined || arn === undefined)
    throw new UsageError('pipeline start: give --config and --state-machine-arn');
  const arnMatch = /^arn:aws[\w-]*:states:([\w-]+):(\d{12}):stateMachine:([\w-]+)$/.exec(arn);
  if (!arnMatch) throw new UsageError(`--state-machine-arn ${arn}: not a Step Functions state machine ARN`);
  const symbols = stringFlag(flags, 'symbol')
    ?.split(',')
    .map((s) => s.trim().toUpperCase());
  const input = {
    configYaml: readFileSync(configPath, 'utf8'),
    ...(symbols ? { symbols } : {}),
    ...(stringFlag(flags, 'from') ? { from: stringFlag(flags, 'from') } : {}),
    ...(stringFlag(flags, 'to') ? { to: stringFlag(flags, 'to') } : {}),
  };
  const steps = createPipelineSteps({
    store: { getText: async () => undefined, putText: async () => {} },
    notifier: { publish: async () => {} },
    marketData: async () => {
      throw new UsageError('not used');
    },
    now: () => new Date(),
    gitCommit: gitCommit(),
    distributedThreshold: Number.POSITIVE_INFINITY,
  });
  const spec = await steps.validate(input);
  const meta = () =>
    provenance(clock, { configPath, params: strategyParams(parseStoredConfig(spec.config, configPath)) });
  const name = `wf-${spec.jobId.slice(0, 32)}`;
  const sfn = client ?? new SFNClient({ region: stringFlag(flags, 'region') ?? arnMatch[1] });
  try {
    const started = (await sfn.send(
      new StartExecutionCommand({ stateMachineArn: arn, name, input: JSON.stringify(input) }),
    )) as { executionArn?: string };
    const document = {
      command: 'pipeline start',
      started: true,
      name,
      executionArn: started.executionArn,
      jobId: spec.jobId,
    };
    io.stdout.write(`${JSON.stringify(withProvenance(meta(), document))}\n`);
  } catch (error) {
    if (!(error instanceof ExecutionAlreadyExists)) throw error;
    const executionArn = `arn:aws:states:${arnMatch[1]}:${arnMatch[2]}:execution:${arnMatch[3]}:${name}`;
    const existing = (await sfn.send(new DescribeExecutionCommand({ executionArn }))) as {
      status?: string;
      output?: string;
    };
    io.stdout.write(
      `${JSON.stringify({
        ...meta(),
        command: 'pipeline start',
        started: false,
        name,
        executionArn,
        jobId: spec.jobId,
        status: existing.status,
        output: existing.output === undefined ? null : JSON.parse(existing.output),
      })}\n`,
    );
  }
  return 0;
}
