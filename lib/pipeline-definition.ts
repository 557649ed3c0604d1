import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { COMMIT_CONTEXT_KEY } from './commit.js';
import {
  addQuantShiftStacks,
  cdkJsonContext,
  SKIP_BUNDLING_CONTEXT,
  STAGE_CONTEXT_KEY,
} from './quantshift-app.js';
import type { StageName } from './stage.js';

/** The account, region and partition the placeholder ARNs of a synthesized definition use. */
export const PLACEHOLDER = {
  partition: 'aws',
  region: 'us-east-1',
  account: '123456789012',
  urlSuffix: 'amazonaws.com',
  /** The data bucket's name in the definition (the Distributed Map's ItemReader). */
  bucketName: 'quantshift-data-bucket-placeholder',
} as const;

/** The placeholder ARN of the Lambda function with this logical id. */
export function placeholderFunctionArn(logicalId: string): string {
  return `arn:${PLACEHOLDER.partition}:lambda:${PLACEHOLDER.region}:${PLACEHOLDER.account}:function:${logicalId}`;
}

/** The synthesized definition references something this module has no placeholder for. */
export class DefinitionTokenError extends Error {
  override readonly name = 'DefinitionTokenError';
}

interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
}

const PSEUDO: Record<string, string> = {
  'AWS::Partition': PLACEHOLDER.partition,
  'AWS::Region': PLACEHOLDER.region,
  'AWS::AccountId': PLACEHOLDER.account,
  'AWS::URLSuffix': PLACEHOLDER.urlSuffix,
};

/**
 * Turns the state machine's `DefinitionString` (a string, or an `Fn::Join` of strings and
 * references) into concrete ASL: each Lambda function becomes {@link placeholderFunctionArn} of its
 * logical id, each bucket {@link PLACEHOLDER.bucketName}, each pseudo parameter its placeholder.
 */
export function concreteDefinition(
  definitionString: unknown,
  resources: Readonly<Record<string, CfnResource>>,
): object {
  const render = (part: unknown): string => {
    if (typeof part === 'string') return part;
    const ref = (part as { Ref?: unknown }).Ref;
    if (typeof ref === 'string') {
      const pseudo = PSEUDO[ref];
      if (pseudo !== undefined) return pseudo;
      if (resources[ref]?.Type === 'AWS::S3::Bucket') return PLACEHOLDER.bucketName;
    }
    const getAtt = (part as { 'Fn::GetAtt'?: unknown })['Fn::GetAtt'];
    if (Array.isArray(getAtt) && getAtt[1] === 'Arn' && typeof getAtt[0] === 'string') {
      if (resources[getAtt[0]]?.Type === 'AWS::Lambda::Function') return placeholderFunctionArn(getAtt[0]);
    }
    throw new DefinitionTokenError(`state machine definition: no placeholder for ${JSON.stringify(part)}`);
  };
  let text: string;
  if (typeof definitionString === 'string') {
    text = definitionString;
  } else {
    const join = (definitionString as { 'Fn::Join'?: unknown })['Fn::Join'];
    if (!Array.isArray(join) || join[0] !== '' || !Array.isArray(join[1])) {
      throw new DefinitionTokenError(
        `state machine definition: expected a string or an Fn::Join, got ${JSON.stringify(definitionString).slice(0, 200)}`,
      );
    }
    text = (join[1] as unknown[]).map(render).join('');
  }
  return JSON.parse(text) as object;
}

/** Options of {@link synthesizePipelineDefinition}. */
export interface SynthesizePipelineDefinitionOptions {
  /**
   * The stage whose research stack is synthesized.
   * @default 'paper'
   */
  readonly stage?: StageName;
}

/** A Lambda function of the synthesized research stack, as its template gives it. */
export interface PipelineFunctionSpec {
  /** MB. */
  readonly memorySize: number;
  readonly architectures: readonly string[];
  /** Seconds. */
  readonly timeout: number;
  readonly environment: Readonly<Record<string, string>>;
}

/** The synthesized pipeline: its concrete definition, and its functions by logical id. */
export interface SynthesizedPipeline {
  readonly definition: object;
  readonly functions: Readonly<Record<string, PipelineFunctionSpec>>;
}

/**
 * Synthesizes the research stack in-process, bundling skipped (about two seconds, no esbuild, no
 * network), and returns the walk-forward state machine's definition as concrete ASL with
 * placeholder ARNs: what `quantshift walk-forward --engine stepfunctions` runs locally with every
 * Task overridden by state name.
 */
export async function synthesizePipelineDefinition(
  options: SynthesizePipelineDefinitionOptions = {},
): Promise<object> {
  return (await synthesizePipeline(options)).definition;
}

/**
 * {@link synthesizePipelineDefinition}, with the memory, architecture, timeout and plain-string
 * environment of every Lambda function of the stack (keyed by logical id, the last part of each
 * Task's placeholder ARN): what the pipeline bench prices its invocations with.
 */
export async function synthesizePipeline(
  options: SynthesizePipelineDefinitionOptions = {},
): Promise<SynthesizedPipeline> {
  const outdir = mkdtempSync(join(tmpdir(), 'quantshift-cdk-'));
  try {
    const app = new App({
      outdir,
      context: {
        ...cdkJsonContext(),
        ...SKIP_BUNDLING_CONTEXT,
        [STAGE_CONTEXT_KEY]: options.stage ?? 'paper',
        // Function environments are not part of the definition: no need to ask git.
        [COMMIT_CONTEXT_KEY]: 'definition-only',
      },
    });
    const { research } = addQuantShiftStacks(app, { nag: false });
    const template = app.synth().getStackArtifact(research.artifactId).template as {
      Resources: Record<string, CfnResource>;
    };
    const machines = Object.values(template.Resources).filter(
      (r) => r.Type === 'AWS::StepFunctions::StateMachine',
    );
    if (machines.length !== 1) {
      throw new DefinitionTokenError(
        `expected one state machine in ${research.stackName}, found ${machines.length}`,
      );
    }
    const functions: Record<string, PipelineFunctionSpec> = {};
    for (const [logicalId, resource] of Object.entries(template.Resources)) {
      if (resource.Type !== 'AWS::Lambda::Function') continue;
      const p = (resource.Properties ?? {}) as {
        MemorySize?: number;
        Architectures?: string[];
        Timeout?: number;
        Environment?: { Variables?: Record<string, unknown> };
      };
      const environment: Record<string, string> = {};
      for (const [name, value] of Object.entries(p.Environment?.Variables ?? {})) {
        if (typeof value === 'string') environment[name] = value;
      }
      functions[logicalId] = {
        // CloudFormation's defaults when the template leaves them out
        memorySize: p.MemorySize ?? 128,
        architectures: p.Architectures ?? ['x86_64'],
        timeout: p.Timeout ?? 3,
        environment,
      };
    }
    return {
      definition: concreteDefinition(machines[0]?.Properties?.DefinitionString, template.Resources),
      functions,
    };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
