import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { resolveCommit } from './commit.js';
import { repoRoot } from './paths.js';
import { ResearchStack } from './research-stack.js';
import { parseStage, type StageConfig, stageConfig } from './stage.js';

/** The context key choosing the stage (`-c stage=paper|live`). */
export const STAGE_CONTEXT_KEY = 'stage';

/** The context value that makes the CDK skip asset bundling for every stack (tests, in-process synth). */
export const SKIP_BUNDLING_CONTEXT = { 'aws:cdk:bundling-stacks': [] as string[] };

/** The stacks of one stage. A later issue adds the trading and monitoring stacks here. */
export interface QuantShiftStacks {
  readonly stage: StageConfig;
  /** `QuantShift-<stage>-Research`: the walk-forward pipeline. */
  readonly research: ResearchStack;
}

/** Options of {@link addQuantShiftStacks}. */
export interface QuantShiftAppOptions {
  /**
   * Run cdk-nag's AWS Solutions checks when the app synthesizes (an unacknowledged error fails it).
   * @default true
   */
  readonly nag?: boolean;
}

/**
 * Adds the stacks of the stage chosen with `-c stage=paper|live` (paper by default) to `app`,
 * with cdk-nag's AWS Solutions checks. `bin/app.ts`, the tests and the in-process synthesis of
 * the pipeline definition all build the app through this one function.
 */
export function addQuantShiftStacks(app: App, options: QuantShiftAppOptions = {}): QuantShiftStacks {
  const stage = stageConfig(parseStage(app.node.tryGetContext(STAGE_CONTEXT_KEY)));
  const commit = resolveCommit(app);
  if (options.nag ?? true) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));

  const researchName = `${stage.stackPrefix}-Research`;
  const research = new ResearchStack(app, researchName, {
    stackName: researchName,
    stage,
    commit,
    terminationProtection: stage.name === 'live',
    tags: { project: 'quantshift', stage: stage.name },
  });
  return { stage, research };
}

/**
 * The `context` of cdk.json (the feature flags), for apps built in-process: the CLI passes it to
 * `bin/app.ts`, but an `App` created in a test or by the local runner has to be given it.
 */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(repoRoot, 'cdk.json'), 'utf8')) as {
    context?: Record<string, unknown>;
  };
  return { ...cdkJson.context };
}
