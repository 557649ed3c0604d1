import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { addQuantShiftStacks, cdkJsonContext, SKIP_BUNDLING_CONTEXT } from '../../lib/quantshift-app.js';
import type { StageName } from '../../lib/stage.js';

/** The commit the test apps give every function (instead of asking git). */
export const TEST_COMMIT = '0123456789abcdef0123456789abcdef01234567';

const outdirs: string[] = [];

/** A fresh cloud-assembly folder for a test app, removed by {@link removeTestOutdirs}. */
export function testOutdir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'quantshift-infra-test-'));
  outdirs.push(dir);
  return dir;
}

/** Removes the folders {@link testOutdir} made (call it in `afterAll`). */
export function removeTestOutdirs(): void {
  for (const dir of outdirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** The app the CLI would build (cdk.json's flags, cdk-nag on), with bundling skipped. */
export function synthQuantShift(stage: StageName = 'paper', extraContext: Record<string, unknown> = {}) {
  const app = new App({
    outdir: testOutdir(),
    context: { ...cdkJsonContext(), ...SKIP_BUNDLING_CONTEXT, stage, commit: TEST_COMMIT, ...extraContext },
  });
  const stacks = addQuantShiftStacks(app);
  // Synthesizes the whole app, cdk-nag included: an unacknowledged error throws here.
  const template = Template.fromStack(stacks.research);
  return {
    app,
    ...stacks,
    template,
    tradingTemplate: Template.fromStack(stacks.trading),
    monitoringTemplate: Template.fromStack(stacks.monitoring),
  };
}

export interface CfnResource {
  readonly Type: string;
  readonly Properties: Record<string, unknown> & { Environment?: { Variables?: Record<string, unknown> } };
}

export interface Statement {
  readonly Effect: string;
  readonly Action: string | string[];
  readonly Resource: unknown;
  readonly Condition?: unknown;
}

/** A statement's actions as an array. */
export const actionsOf = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);

/** A statement's resources as an array. */
export const resourcesOf = (s: Statement): unknown[] =>
  Array.isArray(s.Resource) ? s.Resource : [s.Resource];

/**
 * The state machine's definition with its references rendered readably: `{ Ref: X }` becomes
 * `ref:X`, `{ Fn::GetAtt: [X, Arn] }` becomes `arn:X`, pseudo parameters their names.
 */
export function readableDefinition(definitionString: unknown): Record<string, unknown> & {
  StartAt: string;
  States: Record<string, Record<string, unknown>>;
} {
  const join = (definitionString as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
  const text = join[1]
    .map((part) => {
      if (typeof part === 'string') return part;
      const ref = (part as { Ref?: string }).Ref;
      if (ref !== undefined) return ref.startsWith('AWS::') ? ref.slice(5).toLowerCase() : `ref:${ref}`;
      const getAtt = (part as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
      if (getAtt !== undefined && getAtt[1] === 'Arn') return `arn:${getAtt[0]}`;
      throw new Error(`unexpected token in the definition: ${JSON.stringify(part)}`);
    })
    .join('');
  return JSON.parse(text);
}

/** Every statement of the identity policies attached to a role, by role logical id. */
export function roleStatements(resources: Record<string, CfnResource>, roleId: string): Statement[] {
  return Object.values(resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy')
    .filter((r) =>
      (r.Properties.Roles as unknown[]).some(
        (role) => JSON.stringify(role) === JSON.stringify({ Ref: roleId }),
      ),
    )
    .flatMap((r) => (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
}

/** The logical id of a function's role. */
export const roleOf = (resources: Record<string, CfnResource>, functionId: string): string =>
  ((resources[functionId] as CfnResource).Properties.Role as { 'Fn::GetAtt': [string, string] })[
    'Fn::GetAtt'
  ][0];

/**
 * A function's grants as sorted `action on resource` lines, without logging and tracing; every
 * statement must be an Allow.
 */
export function grantLines(resources: Record<string, CfnResource>, functionId: string): string[] {
  const lines: string[] = [];
  for (const s of roleStatements(resources, roleOf(resources, functionId))) {
    if (s.Effect !== 'Allow') throw new Error(`a ${s.Effect} statement on ${functionId}'s role`);
    for (const action of actionsOf(s)) {
      if (action.startsWith('xray:') || action.startsWith('logs:')) continue;
      for (const resource of resourcesOf(s)) lines.push(`${action} on ${JSON.stringify(resource)}`);
    }
  }
  return lines.sort();
}
