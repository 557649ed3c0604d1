import { execFileSync, spawnSync } from 'node:child_process';
import { App } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { RootConstruct } from 'constructs';
import { afterAll, describe, expect, it } from 'vitest';
import { CommitError, resolveCommit } from '../../lib/commit.js';
import { repoPath, repoRoot } from '../../lib/paths.js';
import { addQuantShiftStacks } from '../../lib/quantshift-app.js';
import { parseStage, StageError, stageConfig } from '../../lib/stage.js';
import { removeTestOutdirs, testOutdir } from './synth.js';

afterAll(removeTestOutdirs);

/** A construct tree root with the given context (no App: nothing to synthesize). */
function rootWith(context: Record<string, unknown> = {}): RootConstruct {
  const root = new RootConstruct();
  for (const [key, value] of Object.entries(context)) root.node.setContext(key, value);
  return root;
}

describe('stage', () => {
  it('is paper by default, or exactly paper or live', () => {
    expect(parseStage(undefined)).toBe('paper');
    expect(parseStage('paper')).toBe('paper');
    expect(parseStage('live')).toBe('live');
    for (const bad of ['prod', 'Live', '', 1, true]) {
      expect(() => parseStage(bad)).toThrow(StageError);
    }
    expect(() => parseStage('prod')).toThrow(
      'unknown stage "prod": use -c stage=paper (the default) or -c stage=live',
    );
  });

  it('configures each stage apart', () => {
    expect(stageConfig('paper')).toMatchObject({
      stackPrefix: 'QuantShift-paper',
      alpacaDataSecretName: 'quantshift/paper/alpaca-data',
      logRetention: RetentionDays.ONE_MONTH,
    });
    expect(stageConfig('live')).toMatchObject({
      stackPrefix: 'QuantShift-live',
      alpacaDataSecretName: 'quantshift/live/alpaca-data',
    });
  });

  it('makes the app refuse an unknown stage before building anything', () => {
    const app = new App({ outdir: testOutdir(), context: { stage: 'prod', commit: 'abc' } });
    expect(() => addQuantShiftStacks(app)).toThrow(StageError);
    expect(app.node.children).toHaveLength(0);
  });

  it('bin/app.ts prints one error line and exits 1 on an unknown stage', () => {
    const result = spawnSync(
      process.execPath,
      [repoPath('node_modules', 'tsx', 'dist', 'cli.mjs'), 'bin/app.ts'],
      {
        cwd: repoRoot,
        encoding: 'utf8',
        env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify({ stage: 'prod', commit: 'abc' }) },
      },
    );
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toBe(
      'error: unknown stage "prod": use -c stage=paper (the default) or -c stage=live',
    );
  });

  it('bin/app.ts prints one error line and exits 1 on one Slack id without the other', () => {
    const result = spawnSync(
      process.execPath,
      [repoPath('node_modules', 'tsx', 'dist', 'cli.mjs'), 'bin/app.ts'],
      {
        cwd: repoRoot,
        encoding: 'utf8',
        env: {
          ...process.env,
          CDK_CONTEXT_JSON: JSON.stringify({ stage: 'paper', commit: 'abc', slackChannelId: 'C0123ABCD' }),
        },
      },
    );
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toMatch(
      /^error: Slack through AWS Chatbot needs both -c slackWorkspaceId=\.\.\. and -c slackChannelId=\.\.\./,
    );
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('commit', () => {
  it('comes from the commit context when given', () => {
    expect(resolveCommit(rootWith({ commit: 'abc1234' }))).toBe('abc1234');
  });

  it('is git rev-parse HEAD otherwise', () => {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    expect(resolveCommit(rootWith())).toBe(head);
  });

  it('refuses a value that is not a commit', () => {
    expect(() => resolveCommit(rootWith({ commit: 'a b' }))).toThrow(CommitError);
    expect(() => resolveCommit(rootWith({ commit: 42 }))).toThrow(/expected a git commit/);
  });
});
