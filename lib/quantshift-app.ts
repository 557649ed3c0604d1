import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { CRYPTO_METRICS_SERVICE } from '../shared/runtime/crypto-metrics.js';
import { resolveCommit } from './commit.js';
import { CryptoDashboardSection } from './constructs/crypto-dashboard.js';
import { CryptoStack } from './crypto-stack.js';
import { MonitoringStack } from './monitoring-stack.js';
import { repoRoot } from './paths.js';
import { ResearchStack } from './research-stack.js';
import { AppContextError, parseStage, type StageConfig, stageConfig } from './stage.js';
import { StreamStack } from './stream-stack.js';
import { TradingStack } from './trading-stack.js';

/** The context key choosing the stage (`-c stage=paper|live`). */
export const STAGE_CONTEXT_KEY = 'stage';

/** The context value that makes the CDK skip asset bundling for every stack (tests, in-process synth). */
export const SKIP_BUNDLING_CONTEXT = { 'aws:cdk:bundling-stacks': [] as string[] };

/** Context keys of the app (`-c key=value`). */
export const CONTEXT_KEYS = {
  /** The strategy config the live functions trade, repository-relative. */
  config: 'config',
  /** The crypto bot's strategy config, repository-relative (default config/crypto-strategy.yaml). */
  cryptoConfig: 'cryptoConfig',
  /** `false`: the live stage's crypto functions send orders (behind the crypto live gate); default true. */
  cryptoDryRun: 'cryptoDryRun',
  /** Slack through AWS Chatbot: the workspace (team) id and the channel id. Neither: the webhook. */
  slackWorkspaceId: 'slackWorkspaceId',
  slackChannelId: 'slackChannelId',
  /** `true`: deploy the market-data stream (`QuantShift-<stage>-Stream`, docs/streaming.md). */
  stream: 'stream',
  /** The stream task's public Node 22 image (default `node:22-bookworm-slim`). */
  streamImage: 'streamImage',
} as const;

/** The default strategy config of the live functions. */
export const DEFAULT_CONFIG_FILE = 'config/equity-strategy.yaml';

/** The default strategy config of the crypto bot. */
export const DEFAULT_CRYPTO_CONFIG_FILE = 'config/crypto-strategy.yaml';

/** The stacks of one stage, in deployment order. */
export interface QuantShiftStacks {
  readonly stage: StageConfig;
  /** `QuantShift-<stage>-Trading`: schedules, live functions, tables, secrets, alert topic. */
  readonly trading: TradingStack;
  /** `QuantShift-<stage>-Crypto`: the crypto bot (Coinbase, UTC days, every day). */
  readonly crypto: CryptoStack;
  /** `QuantShift-<stage>-Research`: the walk-forward pipeline. */
  readonly research: ResearchStack;
  /** `QuantShift-<stage>-Monitoring`: alarms, kill switch, Slack, dashboard. */
  readonly monitoring: MonitoringStack;
  /** `QuantShift-<stage>-Stream`, with `-c stream=true`: the market-data stream task. */
  readonly stream?: StreamStack;
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

  const configFile = optionalString(app, CONTEXT_KEYS.config) ?? DEFAULT_CONFIG_FILE;
  const slackWorkspaceId = optionalString(app, CONTEXT_KEYS.slackWorkspaceId);
  const slackChannelId = optionalString(app, CONTEXT_KEYS.slackChannelId);
  if ((slackWorkspaceId === undefined) !== (slackChannelId === undefined)) {
    throw new AppContextError(
      'Slack through AWS Chatbot needs both -c slackWorkspaceId=... and -c slackChannelId=... (or neither, for the webhook function)',
    );
  }
  const streamValue: unknown = app.node.tryGetContext(CONTEXT_KEYS.stream);
  const withStream = streamValue === true || streamValue === 'true';
  if (streamValue !== undefined && !withStream && streamValue !== false && streamValue !== 'false') {
    throw new AppContextError(`-c stream: expected true or false, got ${JSON.stringify(streamValue)}`);
  }
  const cryptoDryRunValue: unknown = app.node.tryGetContext(CONTEXT_KEYS.cryptoDryRun);
  if (![undefined, true, false, 'true', 'false'].includes(cryptoDryRunValue as string)) {
    throw new AppContextError(
      `-c cryptoDryRun: expected true or false, got ${JSON.stringify(cryptoDryRunValue)}`,
    );
  }
  const cryptoDryRun = cryptoDryRunValue !== false && cryptoDryRunValue !== 'false';
  if (!cryptoDryRun && stage.name !== 'live') {
    throw new AppContextError(
      '-c cryptoDryRun=false: only the live stage sends crypto orders (the paper stage is a dry run: Coinbase has no paper trading)',
    );
  }
  const streamImage = optionalString(app, CONTEXT_KEYS.streamImage);
  const dashboardName = stage.resourcePrefix;
  const common = {
    terminationProtection: stage.protectData,
    tags: { project: 'quantshift', stage: stage.name },
  };

  const tradingName = `${stage.stackPrefix}-Trading`;
  const trading = new TradingStack(app, tradingName, {
    ...common,
    stackName: tradingName,
    stage,
    configFile,
    commit,
    // The dashboard itself is in the monitoring stack, deployed later: the link is built from its name.
    dashboardName,
  });

  const cryptoName = `${stage.stackPrefix}-Crypto`;
  const crypto = new CryptoStack(app, cryptoName, {
    ...common,
    stackName: cryptoName,
    stage,
    configFile: optionalString(app, CONTEXT_KEYS.cryptoConfig) ?? DEFAULT_CRYPTO_CONFIG_FILE,
    dryRun: cryptoDryRun,
    commit,
    dashboardName,
    // The same alert topic, hence the same Slack path, as the equity bot.
    alertTopic: trading.alertTopic,
    alertKey: trading.alertKey,
    upstashSecret: trading.upstashSecret,
  });

  const researchName = `${stage.stackPrefix}-Research`;
  const research = new ResearchStack(app, researchName, {
    ...common,
    stackName: researchName,
    stage,
    commit,
    validationTable: trading.tables.state,
  });

  const monitoringName = `${stage.stackPrefix}-Monitoring`;
  const monitoring = new MonitoringStack(app, monitoringName, {
    ...common,
    stackName: monitoringName,
    stage,
    trading,
    research,
    configFile,
    commit,
    dashboardName,
    ...(slackWorkspaceId === undefined ? {} : { slackWorkspaceId }),
    ...(slackChannelId === undefined ? {} : { slackChannelId }),
    stream: withStream,
  });
  new CryptoDashboardSection(monitoring, 'CryptoDashboard', {
    dashboard: monitoring.dashboard.dashboard,
    stage: stage.name,
    service: CRYPTO_METRICS_SERVICE,
    fundingUnderlyings: crypto.config.funding?.underlyings ?? [],
    fundingThreshold: crypto.config.funding?.threshold ?? 0,
    drawdownLimitPct: Math.round(crypto.config.risk.maxDrawdown * 10_000) / 100,
    dryRun: crypto.dryRun,
    functions: crypto.functions,
    alarms: crypto.alarms,
  });
  if (!withStream) return { stage, trading, crypto, research, monitoring };
  const streamName = `${stage.stackPrefix}-Stream`;
  const stream = new StreamStack(app, streamName, {
    ...common,
    stackName: streamName,
    stage,
    trading,
    configFile,
    commit,
    dashboardName,
    ...(streamImage === undefined ? {} : { image: streamImage }),
  });
  return { stage, trading, crypto, research, monitoring, stream };
}

function optionalString(app: App, key: string): string | undefined {
  const value: unknown = app.node.tryGetContext(key);
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string')
    throw new AppContextError(`-c ${key}: expected a string, got ${JSON.stringify(value)}`);
  return value;
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
