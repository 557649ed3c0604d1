import { QuantShiftError } from '../core/errors.js';
import type { PipelineSteps } from './steps.js';

/** The local execution failed: the state machine reached its Fail state, or a state errored. */
export class PipelineExecutionError extends QuantShiftError {
  constructor(
    message: string,
    readonly error: string,
    readonly causeText: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** What a local execution produced: the output, and the size of every state's output. */
export interface LocalExecution {
  readonly output: unknown;
  readonly stateOutputs: readonly { readonly state: string; readonly bytes: number }[];
}

/** aws-local-stepfunctions needs Promise.withResolvers, which Node 20 lacks. */
function polyfillWithResolvers(): void {
  const P = Promise as unknown as { withResolvers?: () => unknown };
  if (P.withResolvers !== undefined) return;
  P.withResolvers = <T>() => {
    let resolve!: (value: T | PromiseLike<T>) => void;
    let reject!: (reason?: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

/** Task state name → step, for every Task of docs/pipeline.md (both Map branches run the same steps). */
function taskHandlers(steps: PipelineSteps): Record<string, (input: never) => Promise<unknown>> {
  return {
    ValidateInput: steps.validate,
    CheckCache: steps.checkCache,
    PrepareData: steps.prepare,
    OptimizeWindow: steps.optimizeWindow,
    EvaluateWindow: steps.evaluateWindow,
    OptimizeWindowDistributed: steps.optimizeWindow,
    EvaluateWindowDistributed: steps.evaluateWindow,
    Aggregate: steps.aggregate,
    NotifySuccess: steps.notify,
    NotifyFailure: steps.notify,
  } as Record<string, (input: never) => Promise<unknown>>;
}

/** Options of {@link runPipelineLocally}. */
export interface LocalRunOptions {
  /**
   * Runs the Distributed Map branch too. aws-local-stepfunctions has no ItemReader, so each Map
   * state that reads its items from S3 (`ItemReader`, JSON at `ItemReader.Parameters.Key.$`) gets a
   * local Task state in front of it, `<map>ItemReader`, that reads that key with this function and
   * puts the items at `$.items`, where the Map then takes them (`ItemsPath`). Its item processor,
   * concurrency, result path and catchers stay as synthesized. Without it, a job above the
   * distributed threshold fails locally (its Map finds no items).
   */
  readonly readItems?: (key: string) => Promise<unknown[]>;
}

interface AslState {
  Type: string;
  Next?: string;
  Default?: string;
  Choices?: { Next?: string }[];
  Catch?: { Next?: string }[];
  ItemReader?: { Parameters?: Record<string, unknown> };
  ItemsPath?: string;
  ItemProcessor?: { ProcessorConfig?: unknown };
  [key: string]: unknown;
}

/** The state name of the local stand-in for a Map state's ItemReader. */
export const itemReaderStateName = (mapState: string) => `${mapState}ItemReader`;

/**
 * The definition with each top-level ItemReader Map preceded by its local reader Task (see
 * {@link LocalRunOptions.readItems}), and that Task's handlers by state name.
 */
export function withLocalItemReaders(
  definition: object,
  readItems: (key: string) => Promise<unknown[]>,
): { definition: object; handlers: Record<string, (input: Record<string, unknown>) => Promise<unknown>> } {
  const copy = structuredClone(definition) as { StartAt: string; States: Record<string, AslState> };
  const handlers: Record<string, (input: Record<string, unknown>) => Promise<unknown>> = {};
  for (const [name, state] of Object.entries({ ...copy.States })) {
    if (state.Type !== 'Map' || state.ItemReader === undefined) continue;
    const keyPath = state.ItemReader.Parameters?.['Key.$'];
    if (typeof keyPath !== 'string' || !/^\$\.[A-Za-z0-9_]+$/.test(keyPath)) {
      throw new PipelineExecutionError(
        `${name}: the local ItemReader reads a key at a top-level path ($.<field>), got ${JSON.stringify(keyPath)}`,
        'LocalItemReader',
        'unsupported ItemReader',
      );
    }
    const field = keyPath.slice(2);
    const reader = itemReaderStateName(name);
    const redirect = (target: string | undefined) => (target === name ? reader : target);
    for (const other of Object.values(copy.States)) {
      if (other.Next !== undefined) other.Next = redirect(other.Next) as string;
      if (other.Default !== undefined) other.Default = redirect(other.Default) as string;
      for (const choice of other.Choices ?? [])
        if (choice.Next !== undefined) choice.Next = redirect(choice.Next);
    }
    if (copy.StartAt === name) copy.StartAt = reader;
    copy.States[reader] = {
      Type: 'Task',
      Resource: `arn:aws:states:::local:item-reader:${name}`,
      ResultPath: '$.items',
      Next: name,
      ...(state.Catch === undefined ? {} : { Catch: structuredClone(state.Catch) }),
    };
    delete state.ItemReader;
    state.ItemsPath = '$.items';
    if (state.ItemProcessor !== undefined) delete state.ItemProcessor.ProcessorConfig;
    handlers[reader] = async (input) => {
      const key = input[field];
      if (typeof key !== 'string') {
        throw new PipelineExecutionError(`${reader}: no item key at ${keyPath}`, 'LocalItemReader', keyPath);
      }
      return readItems(key);
    };
  }
  return { definition: copy, handlers };
}

/**
 * Runs the synthesized state machine definition with aws-local-stepfunctions, every Task state
 * overridden by the same step code the deployed functions run.
 */
export async function runPipelineLocally(
  definition: object,
  input: unknown,
  steps: PipelineSteps,
  options: LocalRunOptions = {},
): Promise<LocalExecution> {
  polyfillWithResolvers();
  const { StateMachine } = await import('aws-local-stepfunctions');
  const local =
    options.readItems === undefined
      ? { definition, handlers: {} }
      : withLocalItemReaders(definition, options.readItems);
  const machine = new StateMachine(local.definition as never, { validationOptions: { checkArn: false } });
  const execution = machine.run(input as never, {
    overrides: { taskResourceLocalHandlers: { ...taskHandlers(steps), ...local.handlers } as never },
  });
  const stateOutputs: { state: string; bytes: number }[] = [];
  const logging = (async () => {
    for await (const event of execution.eventLogs) {
      const e = event as { type: string; state?: { name: string; output?: unknown } };
      if (e.type === 'StateExited' && e.state !== undefined) {
        stateOutputs.push({
          state: e.state.name,
          bytes: Buffer.byteLength(JSON.stringify(e.state.output ?? null)),
        });
      }
    }
  })();
  try {
    const output = await execution.result;
    await logging;
    return { output, stateOutputs };
  } catch (error) {
    await logging.catch(() => undefined);
    // aws-local-stepfunctions wraps the Fail state's Error/Cause as the cause's name and message.
    const failure = ((error as { cause?: unknown }).cause ?? error) as { name?: string; message?: string };
    const name = failure.name ?? 'ExecutionFailed';
    const cause = failure.message ?? '';
    throw new PipelineExecutionError(`pipeline execution failed: ${cause || name}`, name, cause, {
      cause: error,
    });
  }
}
