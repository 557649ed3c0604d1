import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { afterAll, describe, expect, it } from 'vitest';
import { ESM_REQUIRE_BANNER, TradingFunction } from '../../lib/constructs/trading-function.js';
import { repoPath } from '../../lib/paths.js';
import { cdkJsonContext, SKIP_BUNDLING_CONTEXT } from '../../lib/quantshift-app.js';

const entry = repoPath('functions', 'pipeline-validate', 'handler.ts');

function functionStack(
  props: Partial<ConstructorParameters<typeof TradingFunction>[2]> = {},
  bundle = false,
) {
  const outdir = mkdtempSync(join(tmpdir(), 'quantshift-fn-'));
  const app = new App({
    outdir,
    context: { ...cdkJsonContext(), ...(bundle ? {} : SKIP_BUNDLING_CONTEXT), commit: 'cafe123' },
  });
  const stack = new Stack(app, 'FunctionTest');
  const fn = new TradingFunction(stack, 'Fn', { entry, ...props });
  return { app, stack, fn, outdir };
}

const outdirs: string[] = [];
afterAll(() => {
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
});

describe('TradingFunction', () => {
  it('defaults: nodejs22.x, arm64, 256 MB, 30 s, tracing, one-month logs, Powertools environment', () => {
    const { stack, outdir } = functionStack();
    outdirs.push(outdir);
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      MemorySize: 256,
      Timeout: 30,
      TracingConfig: { Mode: 'Active' },
      Description: 'QuantShift pipeline-validate',
      Environment: {
        Variables: {
          NODE_OPTIONS: '--enable-source-maps',
          POWERTOOLS_SERVICE_NAME: 'pipeline-validate',
          POWERTOOLS_METRICS_NAMESPACE: 'QuantShift',
          POWERTOOLS_LOG_LEVEL: 'INFO',
          QUANTSHIFT_COMMIT: 'cafe123',
        },
      },
    });
    template.hasResource('AWS::Logs::LogGroup', {
      Properties: { RetentionInDays: 30 },
      DeletionPolicy: 'Retain',
    });
    template.resourceCountIs('AWS::IAM::Role', 1);
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } },
        ],
      },
    });
  });

  it('takes memory, timeout, retention, log level, service name, commit and extra environment', () => {
    const { stack, outdir } = functionStack({
      memorySize: 1024,
      timeout: Duration.minutes(2),
      logRetention: RetentionDays.ONE_WEEK,
      logLevel: 'DEBUG',
      serviceName: 'signals',
      commit: 'feedbeef',
      environment: { EXTRA: 'yes', POWERTOOLS_SERVICE_NAME: 'not-this', QUANTSHIFT_COMMIT: 'nor-this' },
    });
    outdirs.push(outdir);
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Lambda::Function', {
      MemorySize: 1024,
      Timeout: 120,
      Environment: {
        Variables: {
          EXTRA: 'yes',
          POWERTOOLS_SERVICE_NAME: 'signals',
          POWERTOOLS_LOG_LEVEL: 'DEBUG',
          QUANTSHIFT_COMMIT: 'feedbeef',
        },
      },
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 7 });
  });

  it('bundles with the local esbuild: a minified ESM bundle with the require banner, a source map, and no CDK inside', () => {
    const { app, fn, outdir } = functionStack({}, true);
    outdirs.push(outdir);
    const assembly = app.synth();
    const assets = readFileSync(join(assembly.directory, 'FunctionTest.assets.json'), 'utf8');
    const hash = Object.keys((JSON.parse(assets) as { files: Record<string, unknown> }).files).find((h) =>
      existsSync(join(assembly.directory, `asset.${h}`, 'index.mjs')),
    );
    expect(hash, 'a bundled asset with index.mjs').toBeDefined();
    const dir = join(assembly.directory, `asset.${hash}`);
    const bundle = readFileSync(join(dir, 'index.mjs'), 'utf8');
    expect(bundle.startsWith(ESM_REQUIRE_BANNER)).toBe(true);
    expect(existsSync(join(dir, 'index.mjs.map'))).toBe(true);
    // The CLI's local-only pipeline synthesis (aws-cdk-lib, cdk-nag) and runner stay out of the bundle.
    expect(bundle).not.toContain('aws-cdk-lib.');
    expect(bundle).not.toContain('cdk-nag');
    expect(bundle).not.toContain('aws-local-stepfunctions');
    // keepNames: error classes keep their names (what Step Functions catches and fails with).
    expect(bundle).toContain('"ConfigError"');
    expect(fn.runtime.name).toBe('nodejs22.x');
  });
});
