import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { Construct } from 'constructs';
import { BacktestPipeline } from './constructs/backtest-pipeline.js';
import type { StageConfig } from './stage.js';

/** Properties of a {@link ResearchStack}. */
export interface ResearchStackProps extends StackProps {
  /** The stage the stack belongs to. */
  readonly stage: StageConfig;
  /**
   * The code's commit, given to every function.
   * @default - the `commit` context value, else `git rev-parse HEAD` at synth time
   */
  readonly commit?: string;
  /**
   * The trading state table, where the pipeline records its decisions for the live gate.
   * @default - decisions stay in the data bucket only
   */
  readonly validationTable?: ITable;
}

/** The research side on AWS: the walk-forward pipeline (`QuantShift-<stage>-Research`). */
export class ResearchStack extends Stack {
  /** The walk-forward pipeline. */
  readonly pipeline: BacktestPipeline;

  constructor(scope: Construct, id: string, props: ResearchStackProps) {
    super(scope, id, {
      description: `QuantShift ${props.stage.name}: research (the walk-forward pipeline on Step Functions)`,
      ...props,
    });
    const { stage } = props;
    this.pipeline = new BacktestPipeline(this, 'WalkForward', {
      namePrefix: stage.resourcePrefix,
      alpacaDataSecretName: stage.alpacaDataSecretName,
      logRetention: stage.logRetention,
      logLevel: stage.logLevel,
      commit: props.commit,
      ...(props.validationTable === undefined ? {} : { validationTable: props.validationTable }),
    });

    const { bucket, topic, stateMachine } = this.pipeline;
    new CfnOutput(this, 'DataBucketName', {
      description: 'The data bucket: jobs/<jobId>/... (reports, walk-forward documents) and records/',
      value: bucket.bucketName,
    });
    new CfnOutput(this, 'AlpacaDataSecretArn', {
      description: `Fill with: aws secretsmanager put-secret-value --secret-id ${stage.alpacaDataSecretName} --secret-string '{"keyId":"...","secret":"..."}'`,
      value: this.pipeline.alpacaDataSecret.secretArn,
    });
    new CfnOutput(this, 'TopicArn', {
      description: 'Notifications of the pipeline (success summary or failure)',
      value: topic.topicArn,
    });
    new CfnOutput(this, 'StateMachineArn', {
      description: 'The walk-forward state machine (quantshift pipeline start --state-machine-arn ...)',
      value: stateMachine.stateMachineArn,
    });
    new CfnOutput(this, 'StateMachineConsoleUrl', {
      description: 'The state machine in the Step Functions console ("Start execution")',
      value: `https://${this.region}.console.aws.amazon.com/states/home?region=${this.region}#/statemachines/view/${stateMachine.stateMachineArn}`,
    });
  }
}
