import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BundlingOutput,
  CfnOutput,
  DockerImage,
  type ILocalBundling,
  RemovalPolicy,
  Stack,
  type StackProps,
  TimeZone,
  Validations,
} from 'aws-cdk-lib';
import { FlowLogDestination, SecurityGroup, SubnetType, Vpc } from 'aws-cdk-lib/aws-ec2';
import {
  Cluster,
  ContainerImage,
  CpuArchitecture,
  FargateService,
  FargateTaskDefinition,
  LogDrivers,
  OperatingSystemFamily,
} from 'aws-cdk-lib/aws-ecs';
import { Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { Asset } from 'aws-cdk-lib/aws-s3-assets';
import { Schedule, ScheduleExpression, ScheduleTargetInput, TimeWindow } from 'aws-cdk-lib/aws-scheduler';
import { Universal } from 'aws-cdk-lib/aws-scheduler-targets';
import type { Construct } from 'constructs';
import { buildSync } from 'esbuild';
import { dashboardUrlOf } from './constructs/trading-dashboard.js';
import { functionBuildOptions } from './constructs/trading-function.js';
import { repoPath } from './paths.js';
import type { StageConfig } from './stage.js';
import { liveFunctionEnvironment, type TradingStack } from './trading-stack.js';

/** The public Node image the task runs (no image is built: no Docker on the deploying machine). */
export const DEFAULT_STREAM_IMAGE = 'node:22-bookworm-slim';

/** New York wall-clock times the service is scaled to one task and back to none, weekdays. */
export const STREAM_WINDOW = {
  start: { hour: '9', minute: '20' },
  stop: { hour: '16', minute: '10' },
} as const;

export interface StreamStackProps extends StackProps {
  readonly stage: StageConfig;
  readonly trading: TradingStack;
  /** The strategy config file (repository-relative), given to the task as text. */
  readonly configFile: string;
  readonly commit: string;
  readonly dashboardName: string;
  /** The container image (a public Node 22 image). */
  readonly image?: string;
  /** `iex` (free accounts) or `sip`. */
  readonly feed?: 'iex' | 'sip';
}

/** esbuild on this machine, as the functions are bundled: the consumer as one ESM file. */
class LocalEsbuild implements ILocalBundling {
  tryBundle(outputDir: string): boolean {
    buildSync({
      ...functionBuildOptions(repoPath('functions', 'stream', 'task.ts'), join(outputDir, 'index.mjs')),
      logLevel: 'warning',
    });
    return true;
  }
}

/**
 * `QuantShift-<stage>-Stream`: the market-data stream consumer (docs/streaming.md) as an ECS
 * Fargate service of at most one task: minimum healthy 0 % and maximum 100 %, so a deploy or a
 * replacement stops the old task before it starts the new one and the account's single stream
 * connection is never asked for twice (the DynamoDB lease refuses a second one anyway). Its desired
 * count is 0; EventBridge Scheduler sets it to 1 before the open and back to 0 after the close
 * (New York time, weekdays). No image is built: the task runs a public Node image whose command
 * fetches the esbuild bundle (an S3 asset of the deploy) and runs it.
 */
export class StreamStack extends Stack {
  readonly service: FargateService;
  readonly cluster: Cluster;
  readonly taskDefinition: FargateTaskDefinition;
  readonly bundle: Asset;
  readonly startSchedule: Schedule;
  readonly stopSchedule: Schedule;

  constructor(scope: Construct, id: string, props: StreamStackProps) {
    super(scope, id, {
      description: `QuantShift ${props.stage.name}: the market-data stream consumer (one Fargate task in session)`,
      ...props,
    });
    const { stage, trading } = props;

    const vpc = new Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'public', subnetType: SubnetType.PUBLIC, cidrMask: 24 }],
    });
    const flowLogs = new LogGroup(this, 'FlowLogs', {
      retention: stage.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    vpc.addFlowLog('FlowLog', { destination: FlowLogDestination.toCloudWatchLogs(flowLogs) });
    const securityGroup = new SecurityGroup(this, 'TaskSecurityGroup', {
      vpc,
      description: 'The stream task: no inbound traffic; outbound to Alpaca (wss, https) and AWS APIs',
      allowAllOutbound: true,
    });

    this.cluster = new Cluster(this, 'Cluster', { vpc, clusterName: `${stage.resourcePrefix}-stream` });

    this.bundle = new Asset(this, 'Bundle', {
      path: repoPath('functions', 'stream'),
      bundling: {
        image: DockerImage.fromRegistry('unused-local-bundling'),
        local: new LocalEsbuild(),
        outputType: BundlingOutput.SINGLE_FILE,
      },
    });

    this.taskDefinition = new FargateTaskDefinition(this, 'Task', {
      cpu: 256,
      memoryLimitMiB: 512,
      runtimePlatform: {
        cpuArchitecture: CpuArchitecture.ARM64,
        operatingSystemFamily: OperatingSystemFamily.LINUX,
      },
    });
    const logGroup = new LogGroup(this, 'Logs', {
      logGroupName: `/quantshift/${stage.name}/stream`,
      retention: stage.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const bootstrap = readFileSync(repoPath('functions', 'stream', 'bootstrap.mjs'), 'utf8');
    this.taskDefinition.addContainer('stream', {
      image: ContainerImage.fromRegistry(props.image ?? DEFAULT_STREAM_IMAGE),
      command: ['node', '--input-type=module', '-e', bootstrap],
      essential: true,
      logging: LogDrivers.awsLogs({ logGroup, streamPrefix: 'stream' }),
      environment: {
        ...liveFunctionEnvironment(trading, dashboardUrlOf(this, props.dashboardName)),
        QUANTSHIFT_COMMIT: props.commit,
        QUANTSHIFT_CONFIG_YAML: readFileSync(repoPath(props.configFile), 'utf8'),
        STREAM_FEED: props.feed ?? 'iex',
        STREAM_BUNDLE_BUCKET: this.bundle.s3BucketName,
        STREAM_BUNDLE_KEY: this.bundle.s3ObjectKey,
        NODE_OPTIONS: '--enable-source-maps',
      },
    });
    const role = this.taskDefinition.taskRole;
    // The bundle, and nothing else of the assets bucket (the asset's grantRead would give s3:List*).
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'ReadStreamBundle',
        effect: Effect.ALLOW,
        actions: ['s3:GetObject'],
        resources: [this.bundle.bucket.arnForObjects(this.bundle.s3ObjectKey)],
      }),
    );
    trading.grantStateItems(role);
    // Releasing the connection lease deletes its item: the one delete, on the lease's partition only.
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'ReleaseStreamLease',
        effect: Effect.ALLOW,
        actions: ['dynamodb:DeleteItem'],
        resources: [trading.tables.state.tableArn],
        conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['STREAM'] } },
      }),
    );
    trading.grantSecretsAndAlerts(role);

    this.service = new FargateService(this, 'Service', {
      cluster: this.cluster,
      serviceName: `${stage.resourcePrefix}-stream`,
      taskDefinition: this.taskDefinition,
      desiredCount: 0,
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      assignPublicIp: true,
      vpcSubnets: { subnetType: SubnetType.PUBLIC },
      securityGroups: [securityGroup],
      circuitBreaker: { enable: true, rollback: false },
    });

    const scale = (
      scheduleId: string,
      at: { hour: string; minute: string },
      desiredCount: number,
      what: string,
    ) =>
      new Schedule(this, scheduleId, {
        scheduleName: `${stage.resourcePrefix}-stream-${desiredCount === 1 ? 'start' : 'stop'}`,
        description: `QuantShift stream: ${what}, weekdays, New York time`,
        schedule: ScheduleExpression.cron({
          minute: at.minute,
          hour: at.hour,
          weekDay: 'MON-FRI',
          timeZone: TimeZone.AMERICA_NEW_YORK,
        }),
        timeWindow: TimeWindow.off(),
        target: new Universal({
          service: 'ecs',
          action: 'updateService',
          input: ScheduleTargetInput.fromObject({
            Cluster: this.cluster.clusterName,
            Service: this.service.serviceName,
            DesiredCount: desiredCount,
          }),
          policyStatements: [
            new PolicyStatement({ actions: ['ecs:UpdateService'], resources: [this.service.serviceArn] }),
          ],
          retryAttempts: 5,
        }),
      });
    this.startSchedule = scale('StartSchedule', STREAM_WINDOW.start, 1, 'one task before the open');
    this.stopSchedule = scale('StopSchedule', STREAM_WINDOW.stop, 0, 'no task after the close');

    this.acknowledgeNagFindings();
    new CfnOutput(this, 'StreamServiceName', {
      description:
        'The stream service (aws ecs update-service --desired-count 1|0 to start or stop it by hand)',
      value: this.service.serviceName,
    });
    new CfnOutput(this, 'StreamLogGroup', {
      description: "The stream task's logs",
      value: logGroup.logGroupName,
    });
  }

  private acknowledgeNagFindings(): void {
    Validations.of(this.taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason:
        'The environment holds table and topic names, secret ARNs, the strategy config text and the bundle location, ' +
        'never a secret value: the keys are read from Secrets Manager at run time, as the functions do.',
    });
    Validations.of(this.cluster).acknowledge({
      id: 'AwsSolutions-ECS4',
      reason:
        'One task a weekday in session: the stream emits its own heartbeat, connection, message-rate and latency ' +
        'metrics (alarmed); Container Insights would add per-task metrics at a cost larger than the task itself.',
    });
  }
}
