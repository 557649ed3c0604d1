import { Aws, type CfnElement, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { type CfnSecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Topic } from 'aws-cdk-lib/aws-sns';
import {
  Choice,
  Condition,
  DefinitionBody,
  DistributedMap,
  Errors,
  Fail,
  JsonPath,
  LogLevel,
  Map as MapState,
  Pass,
  type QueryLanguage,
  S3JsonItemReader,
  StateMachine,
  Succeed,
  TaskInput,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { resolveCommit } from '../commit.js';
import { repoPath } from '../paths.js';
import { TradingFunction } from './trading-function.js';

/** The pipeline's functions, by the folder name of their handler: `functions/pipeline-<name>/handler.ts`. */
export const PIPELINE_FUNCTIONS = [
  'validate',
  'check-cache',
  'prepare',
  'optimize-window',
  'evaluate-window',
  'aggregate',
  'notify',
] as const;

/** One of the pipeline's functions. */
export type PipelineFunctionName = (typeof PIPELINE_FUNCTIONS)[number];

/** Memory and timeout per function: the window steps and the report are the heavy ones. */
const SIZING: Record<PipelineFunctionName, { memorySize: number; timeout: Duration }> = {
  validate: { memorySize: 512, timeout: Duration.seconds(30) },
  'check-cache': { memorySize: 512, timeout: Duration.seconds(30) },
  prepare: { memorySize: 1024, timeout: Duration.minutes(5) },
  // 1769 MB is one full vCPU: the in-sample grid search is CPU-bound.
  'optimize-window': { memorySize: 1769, timeout: Duration.minutes(15) },
  'evaluate-window': { memorySize: 1024, timeout: Duration.minutes(5) },
  aggregate: { memorySize: 2048, timeout: Duration.minutes(10) },
  notify: { memorySize: 256, timeout: Duration.seconds(30) },
};

/** Properties of a {@link BacktestPipeline}. */
export interface BacktestPipelineProps {
  /**
   * Prefix of the names that must be unique per account and region (state machine, log group).
   * @default 'quantshift'
   */
  readonly namePrefix?: string;
  /**
   * Name of the Secrets Manager secret the stack creates (empty) for the Alpaca market-data
   * keys, to be filled by an operator with JSON `{ "keyId": "...", "secret": "..." }`.
   * @default 'quantshift/paper/alpaca-data'
   */
  readonly alpacaDataSecretName?: string;
  /**
   * How long a job's files (`jobs/`) are kept; idempotency records (`records/`) go a day
   * earlier, so that a cached summary never points at a deleted report.
   * @default Duration.days(30)
   */
  readonly jobsExpiration?: Duration;
  /**
   * How long the server access logs of the data bucket are kept.
   * @default Duration.days(90)
   */
  readonly accessLogsExpiration?: Duration;
  /**
   * Above this many backtests (windows × grid), the Distributed Map runs the windows
   * (`PIPELINE_DISTRIBUTED_THRESHOLD` of the prepare function).
   * @default 50_000
   */
  readonly distributedThreshold?: number;
  /**
   * How many child executions the Distributed Map runs at once; keeps a sweep from taking the
   * account's whole Lambda concurrency from the trading functions.
   * @default 100
   */
  readonly distributedMaxConcurrency?: number;
  /**
   * How long function and state machine logs are kept.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Powertools log level of the functions.
   * @default 'INFO'
   */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /**
   * What happens to the buckets, the topic key and the secret when removed from the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * The code's commit (`QUANTSHIFT_COMMIT` of every function, part of every job id).
   * @default - the `commit` context value, else `git rev-parse HEAD` at synth time
   */
  readonly commit?: string;
  /**
   * The trading state table: the aggregate step records each walk-forward decision there, the
   * record the live stage's validation gate reads (PutItem on that table only).
   * @default - decisions stay in the data bucket only
   */
  readonly validationTable?: ITable;
}

/**
 * The walk-forward pipeline of docs/pipeline.md: a data bucket, a notification topic, the Alpaca
 * data secret, seven functions with least-privilege grants, and the Step Functions state machine
 * (JSONPath) that runs them, with an inline Map for small jobs and a Distributed Map for sweeps.
 */
export class BacktestPipeline extends Construct {
  /** Holds the job files (`jobs/<jobId>/...`) and the idempotency records (`records/<jobId>.json`). */
  readonly bucket: Bucket;
  /** Where the server access logs of {@link bucket} go. */
  readonly accessLogsBucket: Bucket;
  /** Success and failure notifications (to Slack, through a subscription added elsewhere). */
  readonly topic: Topic;
  /** The KMS key encrypting {@link topic}. */
  readonly topicKey: Key;
  /** The Alpaca market-data keys (created empty: the stack never holds a key). */
  readonly alpacaDataSecret: Secret;
  /** The state machine. */
  readonly stateMachine: StateMachine;
  /** The pipeline's functions by name. */
  readonly functions: Readonly<Record<PipelineFunctionName, TradingFunction>>;

  constructor(scope: Construct, id: string, props: BacktestPipelineProps = {}) {
    super(scope, id);
    const namePrefix = props.namePrefix ?? 'quantshift';
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const logRetention = props.logRetention ?? RetentionDays.ONE_MONTH;
    const jobsExpiration = props.jobsExpiration ?? Duration.days(30);
    if (jobsExpiration.toDays() < 2) {
      throw new Error(`BacktestPipeline ${id}: jobsExpiration must be at least 2 days`);
    }
    const commit = props.commit ?? resolveCommit(this);

    // ---- storage and notification -------------------------------------------------------------
    this.accessLogsBucket = new Bucket(this, 'AccessLogsBucket', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      removalPolicy,
      lifecycleRules: [
        { id: 'expire-access-logs', expiration: props.accessLogsExpiration ?? Duration.days(90) },
      ],
    });

    this.bucket = new Bucket(this, 'DataBucket', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      versioned: true,
      removalPolicy,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'data-bucket/',
      lifecycleRules: [
        {
          id: 'expire-jobs',
          prefix: 'jobs/',
          expiration: jobsExpiration,
          noncurrentVersionExpiration: Duration.days(1),
        },
        {
          id: 'expire-records',
          prefix: 'records/',
          expiration: Duration.days(jobsExpiration.toDays() - 1),
          noncurrentVersionExpiration: Duration.days(1),
        },
        {
          id: 'clean-up',
          abortIncompleteMultipartUploadAfter: Duration.days(1),
          expiredObjectDeleteMarker: true,
          noncurrentVersionExpiration: Duration.days(30),
        },
      ],
    });

    this.topicKey = new Key(this, 'TopicKey', {
      description: `${namePrefix}: encrypts the walk-forward pipeline's notification topic`,
      enableKeyRotation: true,
      removalPolicy,
    });
    this.topic = new Topic(this, 'Topic', {
      displayName: `${namePrefix} walk-forward pipeline`,
      masterKey: this.topicKey,
      enforceSSL: true,
    });

    this.alpacaDataSecret = new Secret(this, 'AlpacaDataSecret', {
      secretName: props.alpacaDataSecretName ?? 'quantshift/paper/alpaca-data',
      description:
        'Alpaca market-data keys for the walk-forward pipeline: JSON {"keyId": "...", "secret": "..."}',
      removalPolicy,
    });
    // Created without a value: an operator puts the keys in (the L2 would generate a random one).
    (this.alpacaDataSecret.node.defaultChild as CfnSecret).addPropertyDeletionOverride(
      'GenerateSecretString',
    );

    // ---- functions ------------------------------------------------------------------------------
    const functions = {} as Record<PipelineFunctionName, TradingFunction>;
    for (const name of PIPELINE_FUNCTIONS) {
      functions[name] = new TradingFunction(this, `${pascal(name)}Function`, {
        entry: repoPath('functions', `pipeline-${name}`, 'handler.ts'),
        ...SIZING[name],
        logRetention,
        logLevel: props.logLevel ?? 'INFO',
        commit,
        environment: { DATA_BUCKET: this.bucket.bucketName },
      });
    }
    this.functions = functions;

    // Grants: exactly the keys each step reads and writes (shared/pipeline/steps/<step>.ts).
    const jobs = this.bucket.arnForObjects('jobs/*');
    const records = this.bucket.arnForObjects('records/*');
    const dataCache = this.bucket.arnForObjects('data/*');
    const allow = (fn: TradingFunction, actions: string[], resources: string[]) =>
      fn.addToRolePolicy(new PolicyStatement({ effect: Effect.ALLOW, actions, resources }));
    // s3:ListBucket makes a missing key a 404 (NoSuchKey, "not there") instead of a 403.
    const listBucket = (fn: TradingFunction) => allow(fn, ['s3:ListBucket'], [this.bucket.bucketArn]);

    listBucket(functions['check-cache']);
    allow(functions['check-cache'], ['s3:GetObject'], [records]);

    allow(functions.prepare, ['s3:PutObject'], [jobs]);
    listBucket(functions.prepare);
    allow(functions.prepare, ['s3:GetObject', 's3:PutObject'], [dataCache]);
    functions.prepare.addEnvironment('ALPACA_SECRET_ARN', this.alpacaDataSecret.secretArn);
    functions.prepare.addEnvironment(
      'PIPELINE_DISTRIBUTED_THRESHOLD',
      String(props.distributedThreshold ?? 50_000),
    );
    this.alpacaDataSecret.grantRead(functions.prepare);

    for (const name of ['optimize-window', 'evaluate-window'] as const) {
      listBucket(functions[name]);
      allow(functions[name], ['s3:GetObject', 's3:PutObject'], [jobs]);
    }

    if (props.validationTable !== undefined) {
      functions.aggregate.addEnvironment('STATE_TABLE', props.validationTable.tableName);
      allow(functions.aggregate, ['dynamodb:PutItem'], [props.validationTable.tableArn]);
    }
    listBucket(functions.aggregate);
    allow(functions.aggregate, ['s3:GetObject', 's3:PutObject'], [jobs]);
    allow(functions.aggregate, ['s3:PutObject'], [records]);

    functions.notify.addEnvironment('TOPIC_ARN', this.topic.topicArn);
    allow(functions.notify, ['sns:Publish'], [this.topic.topicArn]);
    functions.notify.addToRolePolicy(
      new PolicyStatement({
        effect: Effect.ALLOW,
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [this.topicKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `sns.${Aws.REGION}.amazonaws.com` } },
      }),
    );

    // ---- state machine (docs/pipeline.md) -------------------------------------------------------
    const invoke = (stateName: string, fn: TradingFunction, extra: Partial<{ inputPath: string }> = {}) =>
      new LambdaInvoke(this, stateName, { lambdaFunction: fn, payloadResponseOnly: true, ...extra });
    const windowTask = (stateName: string, fn: TradingFunction) =>
      invoke(stateName, fn).addRetry({
        errors: ['Lambda.TooManyRequestsException'],
        interval: Duration.seconds(2),
        maxAttempts: 6,
        backoffRate: 2,
      });

    const failed = new Fail(this, 'Failed', { errorPath: '$.error.Error', causePath: '$.error.Cause' });
    const notifyFailure = new LambdaInvoke(this, 'NotifyFailure', {
      lambdaFunction: functions.notify,
      payloadResponseOnly: true,
      payload: TaskInput.fromObject({ ok: false, error: JsonPath.objectAt('$.error') }),
      resultPath: JsonPath.DISCARD,
    }).next(failed);
    const catchAll = { errors: [Errors.ALL], resultPath: '$.error' };

    const succeeded = new Succeed(this, 'Succeeded');
    const validate = invoke('ValidateInput', functions.validate).addCatch(notifyFailure, catchAll);
    const checkCache = invoke('CheckCache', functions['check-cache']).addCatch(notifyFailure, catchAll);
    const returnCached = new Pass(this, 'ReturnCached', { outputPath: '$.result' }).next(succeeded);
    const prepare = invoke('PrepareData', functions.prepare, { inputPath: '$.job' }).addCatch(
      notifyFailure,
      catchAll,
    );

    const inlineWindows = new InlineMap(this, 'InlineWindows', {
      itemsPath: '$.items',
      resultPath: JsonPath.DISCARD,
      maxConcurrency: 0,
    })
      .itemProcessor(
        windowTask('OptimizeWindow', functions['optimize-window']).next(
          windowTask('EvaluateWindow', functions['evaluate-window']),
        ),
      )
      .addCatch(notifyFailure, catchAll);

    const distributedWindows = new DistributedMap(this, 'DistributedWindows', {
      itemReader: new S3JsonItemReader({ bucket: this.bucket, key: JsonPath.stringAt('$.itemsKey') }),
      resultPath: JsonPath.DISCARD,
      maxConcurrency: props.distributedMaxConcurrency ?? 100,
    })
      .itemProcessor(
        windowTask('OptimizeWindowDistributed', functions['optimize-window']).next(
          windowTask('EvaluateWindowDistributed', functions['evaluate-window']),
        ),
      )
      .addCatch(notifyFailure, catchAll);

    const aggregate = invoke('Aggregate', functions.aggregate, { inputPath: '$.job' }).addCatch(
      notifyFailure,
      catchAll,
    );
    const notifySuccess = new LambdaInvoke(this, 'NotifySuccess', {
      lambdaFunction: functions.notify,
      payloadResponseOnly: true,
      payload: TaskInput.fromObject({ ok: true, summary: JsonPath.entirePayload }),
      resultPath: JsonPath.DISCARD,
    })
      .addCatch(notifyFailure, catchAll)
      .next(succeeded);
    aggregate.next(notifySuccess);

    const definition = validate
      .next(checkCache)
      .next(
        new Choice(this, 'IsCached')
          .when(Condition.booleanEquals('$.cached', true), returnCached)
          .otherwise(
            prepare.next(
              new Choice(this, 'UseDistributedMap')
                .when(Condition.booleanEquals('$.distributed', true), distributedWindows.next(aggregate))
                .otherwise(inlineWindows.next(aggregate)),
            ),
          ),
      );

    const stateMachineName = `${namePrefix}-walk-forward`;
    this.stateMachine = new StateMachine(this, 'StateMachine', {
      stateMachineName,
      definitionBody: DefinitionBody.fromChainable(definition),
      tracingEnabled: true,
      logs: {
        destination: new LogGroup(this, 'StateMachineLogGroup', {
          logGroupName: `/aws/vendedlogs/states/${stateMachineName}`,
          retention: logRetention,
          removalPolicy: RemovalPolicy.RETAIN,
        }),
        level: LogLevel.ALL,
        includeExecutionData: true,
      },
    });

    this.acknowledgeNagFindings();
  }

  /** cdk-nag findings this design accepts, each with its reason, on the narrowest construct. */
  private acknowledgeNagFindings(): void {
    const stack = Stack.of(this);
    const logicalId = (construct: Construct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
    const bucketId = logicalId(this.bucket);
    const ack = (scope: Construct, id: string, reason: string) =>
      Validations.of(scope).acknowledge({ id, reason });

    ack(
      this.alpacaDataSecret,
      'AwsSolutions-SMG4',
      'Alpaca issues the API keys in its dashboard and has no API that a rotation function could call; ' +
        'they are rotated by hand (new keys in Alpaca, then put-secret-value), see the runbook.',
    );

    const prefixReason = (prefix: string) =>
      `Per-job keys ${prefix}<jobId>/... are named at run time; the grant is limited to the ${prefix} prefix ` +
      'of the data bucket and to the exact object actions the step uses (no wildcard actions).';
    for (const fn of [
      this.functions.prepare,
      this.functions['optimize-window'],
      this.functions['evaluate-window'],
      this.functions.aggregate,
    ]) {
      ack(
        fn.role as Construct,
        `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/jobs/*]`,
        prefixReason('jobs/'),
      );
    }
    ack(
      this.functions.prepare.role as Construct,
      `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/data/*]`,
      'The market-data cache data/<SYMBOL>/<from>_<to>_<adjustment>.json is keyed by request at run time; read and write ' +
        'of objects under the data/ prefix only.',
    );
    for (const fn of [this.functions['check-cache'], this.functions.aggregate]) {
      ack(
        fn.role as Construct,
        `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/records/*]`,
        prefixReason('records/'),
      );
    }

    const role = this.stateMachine.role as Construct;
    ack(
      role,
      'AwsSolutions-IAM5[Resource::*]',
      'Step Functions logging to CloudWatch Logs (logs:*LogDelivery, DescribeLogGroups, DescribeResourcePolicies, ' +
        'PutResourcePolicy) and X-Ray tracing (xray:PutTraceSegments, ...) have no resource-level permissions.',
    );
    for (const fn of Object.values(this.functions)) {
      ack(
        role,
        `AwsSolutions-IAM5[Resource::<${logicalId(fn)}.Arn>:*]`,
        "CDK's LambdaInvoke grant also covers the function's versions and aliases (<arn>:*); it is " +
          "lambda:InvokeFunction on the pipeline's own functions only.",
      );
    }
    ack(
      role,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::<${bucketId}>/*]`,
      "The Distributed Map's ItemReader reads jobs/<jobId>/items.json, a key named at run time; CDK's " +
        'S3JsonItemReader grant is s3:GetObject on this bucket only.',
    );
    const executions = `arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:${JSON.stringify(
      {
        'Fn::Select': [6, { 'Fn::Split': [':', { Ref: logicalId(this.stateMachine) }] }],
      },
    )}`;
    const distributedMapPolicy =
      this.stateMachine.node.tryFindChild('DistributedMapPolicy') ?? this.stateMachine;
    const childReason =
      'The Distributed Map runs child executions of this state machine; describing, stopping and redriving ' +
      'them needs their execution ARNs, named at run time. Limited to executions of this state machine.';
    ack(distributedMapPolicy, `AwsSolutions-IAM5[Resource::${executions}:*]`, childReason);
    ack(distributedMapPolicy, `AwsSolutions-IAM5[Resource::${executions}/*:*]`, childReason);
  }
}

/**
 * An inline Map state that always renders its `MaxConcurrency`, 0 (no limit) included: the CDK
 * leaves a 0 out, docs/pipeline.md states it.
 */
class InlineMap extends MapState {
  private readonly explicitMaxConcurrency: number;

  constructor(
    scope: Construct,
    id: string,
    props: { itemsPath: string; resultPath: string; maxConcurrency: number },
  ) {
    super(scope, id, props);
    this.explicitMaxConcurrency = props.maxConcurrency;
  }

  override toStateJson(queryLanguage?: QueryLanguage): object {
    return { ...super.toStateJson(queryLanguage), MaxConcurrency: this.explicitMaxConcurrency };
  }
}

/** `optimize-window` → `OptimizeWindow`. */
function pascal(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_, __, c: string) => c.toUpperCase());
}
