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

/**
 * Runs the synthesized state machine definition with aws-local-stepfunctions, every Task state
 * overridden by the same step code the deployed functions run.
 */
export async function runPipelineLocally(
  definition: object,
  input: unknown,
  steps: PipelineSteps,
): Promise<LocalExecution> {
  polyfillWithResolvers();
  const { StateMachine } = await import('aws-local-stepfunctions');
  const machine = new StateMachine(definition as never, { validationOptions: { checkArn: false } });
  const execution = machine.run(input as never, {
    overrides: { taskResourceLocalHandlers: taskHandlers(steps) as never },
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
