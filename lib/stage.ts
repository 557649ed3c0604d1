import { RetentionDays } from 'aws-cdk-lib/aws-logs';

/** The stages QuantShift deploys: paper trading (the default) and live trading. */
export const STAGE_NAMES = ['paper', 'live'] as const;

/** A deployment stage, chosen with `-c stage=paper|live`. */
export type StageName = (typeof STAGE_NAMES)[number];

/** The stage chosen on the command line was not one QuantShift knows. */
export class StageError extends Error {
  override readonly name = 'StageError';
}

/** A `-c key=value` of the app that cannot be used (a Slack id without the other, a non-string). */
export class AppContextError extends Error {
  override readonly name = 'AppContextError';
}

/** What differs between the stages. Every stack of a stage is built from one of these. */
export interface StageConfig {
  /** `paper` or `live`. */
  readonly name: StageName;
  /** Prefix of every stack name of the stage: `QuantShift-<stage>`. */
  readonly stackPrefix: string;
  /** Prefix of resource names that must be unique per account and region: `quantshift-<stage>`. */
  readonly resourcePrefix: string;
  /** How long function and state machine logs are kept. */
  readonly logRetention: RetentionDays;
  /** Powertools log level of every function. */
  readonly logLevel: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /** Name of the Secrets Manager secret holding the Alpaca market-data keys (JSON `{ keyId, secret }`). */
  readonly alpacaDataSecretName: string;
  /**
   * Name of the secret holding the Alpaca trading keys of this stage (JSON `{ keyId, secret }`):
   * paper keys for paper, the live account's keys for live. Never the same secret.
   */
  readonly alpacaTradingSecretName: string;
  /** Name of the secret holding the Upstash Redis REST endpoint (JSON `{ url, token }`). */
  readonly upstashSecretName: string;
  /**
   * Name of the secret holding the crypto bot's Coinbase CDP API key (JSON `{ name, privateKey }`):
   * the key's name `organizations/{org}/apiKeys/{id}` and its private key (ES256 PEM or Ed25519 base64).
   */
  readonly coinbaseSecretName: string;
  /** Name of the secret holding the Slack incoming webhook (JSON `{ url }`), when Chatbot is not used. */
  readonly slackWebhookSecretName: string;
  /** DynamoDB deletion protection and stack termination protection. */
  readonly protectData: boolean;
}

const STAGES: Record<StageName, StageConfig> = {
  paper: {
    name: 'paper',
    stackPrefix: 'QuantShift-paper',
    resourcePrefix: 'quantshift-paper',
    logRetention: RetentionDays.ONE_MONTH,
    logLevel: 'INFO',
    alpacaDataSecretName: 'quantshift/paper/alpaca-data',
    alpacaTradingSecretName: 'quantshift/paper/alpaca-trading',
    upstashSecretName: 'quantshift/paper/upstash',
    coinbaseSecretName: 'quantshift/paper/coinbase-cdp',
    slackWebhookSecretName: 'quantshift/paper/slack-webhook',
    protectData: false,
  },
  live: {
    name: 'live',
    stackPrefix: 'QuantShift-live',
    resourcePrefix: 'quantshift-live',
    logRetention: RetentionDays.THREE_MONTHS,
    logLevel: 'INFO',
    alpacaDataSecretName: 'quantshift/live/alpaca-data',
    alpacaTradingSecretName: 'quantshift/live/alpaca-trading',
    upstashSecretName: 'quantshift/live/upstash',
    coinbaseSecretName: 'quantshift/live/coinbase-cdp',
    slackWebhookSecretName: 'quantshift/live/slack-webhook',
    protectData: true,
  },
};

/**
 * The stage named by the `stage` context value (`-c stage=...`): `paper` when absent,
 * otherwise exactly `paper` or `live`.
 */
export function parseStage(value: unknown): StageName {
  if (value === undefined || value === null) return 'paper';
  if (typeof value === 'string' && (STAGE_NAMES as readonly string[]).includes(value))
    return value as StageName;
  throw new StageError(
    `unknown stage ${JSON.stringify(value)}: use -c stage=paper (the default) or -c stage=live`,
  );
}

/** The configuration of a stage. */
export function stageConfig(name: StageName): StageConfig {
  return STAGES[name];
}
