import { beforeAll, describe, expect, it } from 'vitest';
import {
  concreteDefinition,
  DefinitionTokenError,
  PLACEHOLDER,
  placeholderFunctionArn,
  synthesizePipelineDefinition,
} from '../../lib/pipeline-definition.js';

type Asl = { StartAt: string; States: Record<string, Record<string, unknown>> };

/** aws-local-stepfunctions needs Promise.withResolvers, which Node 20 lacks. */
function polyfillWithResolvers(): void {
  const P = Promise as unknown as { withResolvers?: unknown };
  P.withResolvers ??= () => {
    let resolve: unknown;
    let reject: unknown;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

async function run(definition: object, input: unknown, handlers: Record<string, (input: never) => unknown>) {
  polyfillWithResolvers();
  const { StateMachine } = await import('aws-local-stepfunctions');
  const machine = new StateMachine(definition as never, { validationOptions: { checkArn: false } });
  return machine.run(input as never, { overrides: { taskResourceLocalHandlers: handlers as never } }).result;
}

let definition: Asl;
beforeAll(async () => {
  definition = (await synthesizePipelineDefinition()) as Asl;
});

describe('synthesizePipelineDefinition', () => {
  it('returns concrete ASL starting at ValidateInput', () => {
    expect(definition.StartAt).toBe('ValidateInput');
    const text = JSON.stringify(definition);
    expect(text).not.toContain('Fn::');
    expect(text).not.toContain('"Ref"');
  });

  it('puts a well-formed placeholder ARN, per function, in every Task', () => {
    const tasks: [string, string][] = [];
    const collect = (states: Record<string, Record<string, unknown>>) => {
      for (const [name, state] of Object.entries(states)) {
        if (state.Type === 'Task') tasks.push([name, state.Resource as string]);
        const inner = state.ItemProcessor as { States: Record<string, Record<string, unknown>> } | undefined;
        if (inner !== undefined) collect(inner.States);
      }
    };
    collect(definition.States);
    expect(tasks.map(([name]) => name).sort()).toEqual(
      [
        'Aggregate',
        'CheckCache',
        'EvaluateWindow',
        'EvaluateWindowDistributed',
        'NotifyFailure',
        'NotifySuccess',
        'OptimizeWindow',
        'OptimizeWindowDistributed',
        'PrepareData',
        'ValidateInput',
      ].sort(),
    );
    for (const [, arn] of tasks)
      expect(arn).toMatch(/^arn:aws:lambda:us-east-1:123456789012:function:[A-Za-z0-9]+$/);
    const arn = (name: string) => tasks.find(([n]) => n === name)?.[1];
    expect(arn('OptimizeWindow')).toBe(arn('OptimizeWindowDistributed'));
    expect(arn('EvaluateWindow')).toBe(arn('EvaluateWindowDistributed'));
    expect(arn('NotifySuccess')).toBe(arn('NotifyFailure'));
    expect(new Set(tasks.map(([, a]) => a)).size).toBe(7);
  });

  it('names the bucket and the partition in the ItemReader with placeholders', () => {
    expect(definition.States.DistributedWindows?.ItemReader).toEqual({
      Resource: 'arn:aws:states:::s3:getObject',
      ReaderConfig: { InputType: 'JSON' },
      Parameters: { Bucket: PLACEHOLDER.bucketName, 'Key.$': '$.itemsKey' },
    });
  });

  it('runs locally: the inline branch, the cached branch, and a failing step', async () => {
    const calls: string[] = [];
    const step =
      (name: string, f: (input: never) => unknown = (input) => input) =>
      async (input: never) => {
        calls.push(name);
        return f(input);
      };
    const notified: unknown[] = [];
    const handlers = {
      ValidateInput: step('ValidateInput', () => ({ jobId: 'j1' })),
      CheckCache: step('CheckCache', (job) => ({ job, cached: false })),
      PrepareData: step('PrepareData', (job) => ({
        job,
        items: [0, 1, 2].map((window) => ({ jobId: 'j1', unit: 0, window })),
        itemsKey: 'jobs/j1/items.json',
        itemCount: 3,
        distributed: false,
      })),
      OptimizeWindow: step('OptimizeWindow', (item: object) => ({ ...item, choiceKey: 'c' })),
      EvaluateWindow: step('EvaluateWindow', (item: object) => ({ ...item, resultKey: 'r' })),
      Aggregate: step('Aggregate', (job: { jobId: string }) => ({ jobId: job.jobId, windows: 3 })),
      NotifySuccess: step('NotifySuccess', (event) => {
        notified.push(event);
        return { published: true };
      }),
      NotifyFailure: step('NotifyFailure', (event) => {
        notified.push(event);
        return { published: true };
      }),
    };
    expect(await run(definition, { configYaml: 'x' }, handlers)).toEqual({ jobId: 'j1', windows: 3 });
    expect(calls.filter((c) => c === 'OptimizeWindow')).toHaveLength(3);
    expect(calls.filter((c) => c === 'EvaluateWindow')).toHaveLength(3);
    expect(notified).toEqual([{ ok: true, summary: { jobId: 'j1', windows: 3 } }]);

    const cachedSummary = { jobId: 'j1', windows: 3, cached: 'yes' };
    const cached = await run(
      definition,
      {},
      {
        ...handlers,
        CheckCache: async (job: never) => ({ job, cached: true, result: cachedSummary }),
        PrepareData: async () => {
          throw new Error('PrepareData must not run for a cached job');
        },
      },
    );
    expect(cached).toEqual(cachedSummary);

    notified.length = 0;
    const bad = Object.assign(new Error('invalid pipeline input: from: is after to'), {
      name: 'PipelineInputError',
    });
    const failure = run(
      definition,
      {},
      {
        ...handlers,
        ValidateInput: async () => {
          throw bad;
        },
      },
    );
    await expect(failure).rejects.toThrow(/invalid pipeline input: from: is after to/);
    expect(notified).toEqual([
      {
        ok: false,
        error: { Error: 'PipelineInputError', Cause: 'invalid pipeline input: from: is after to' },
      },
    ]);
  });
});

describe('concreteDefinition', () => {
  const resources = {
    Fn1: { Type: 'AWS::Lambda::Function' },
    Data: { Type: 'AWS::S3::Bucket' },
    Topic: { Type: 'AWS::SNS::Topic' },
  };

  it('replaces functions, buckets and pseudo parameters', () => {
    const asl = concreteDefinition(
      {
        'Fn::Join': [
          '',
          [
            '{"a":"',
            { 'Fn::GetAtt': ['Fn1', 'Arn'] },
            '","b":"',
            { Ref: 'Data' },
            '","c":"arn:',
            { Ref: 'AWS::Partition' },
            ':',
            { Ref: 'AWS::Region' },
            ':',
            { Ref: 'AWS::AccountId' },
            '"}',
          ],
        ],
      },
      resources,
    );
    expect(asl).toEqual({
      a: placeholderFunctionArn('Fn1'),
      b: PLACEHOLDER.bucketName,
      c: 'arn:aws:us-east-1:123456789012',
    });
    expect(concreteDefinition('{"StartAt":"X"}', resources)).toEqual({ StartAt: 'X' });
  });

  it('refuses a reference it has no placeholder for, naming it', () => {
    expect(() =>
      concreteDefinition({ 'Fn::Join': ['', ['{"a":"', { Ref: 'Topic' }, '"}']] }, resources),
    ).toThrow(DefinitionTokenError);
    expect(() =>
      concreteDefinition({ 'Fn::Join': ['', [{ 'Fn::GetAtt': ['Data', 'Arn'] }]] }, resources),
    ).toThrow(/no placeholder for \{"Fn::GetAtt":\["Data","Arn"\]\}/);
    expect(() => concreteDefinition({ 'Fn::Sub': 'x' }, resources)).toThrow(
      /expected a string or an Fn::Join/,
    );
  });
});
