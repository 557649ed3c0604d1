import { basename, dirname, join } from 'node:path';
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { resolveCommit } from '../commit.js';
import { repoRoot } from '../paths.js';

/** The CloudWatch namespace every QuantShift function emits its metrics (EMF) to. */
export const METRICS_NAMESPACE = 'QuantShift';

/**
 * The banner an ESM bundle needs: CommonJS dependencies bundled into it still call `require`
 * (for Node built-ins), which an ES module does not have.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __quantshiftCreateRequire } from 'node:module'; const require = __quantshiftCreateRequire(import.meta.url);";

/**
 * Modules a handler's code can reach only through dynamic imports of local-only features (the CLI's
 * `--engine stepfunctions` synthesizes the CDK app and runs aws-local-stepfunctions). Marked
 * external, they stay out of every bundle: without this, esbuild follows `import('../../lib/...')`
 * into the whole of aws-cdk-lib (50+ MB of input, seconds per function).
 */
export const LOCAL_ONLY_MODULES: readonly string[] = [
  '*/lib/pipeline-definition.js',
  'aws-local-stepfunctions',
];

/** Properties of a {@link TradingFunction}. */
export interface TradingFunctionProps {
  /**
   * Absolute path of the handler's TypeScript file, which exports `handler`
   * (e.g. `functions/pipeline-validate/handler.ts`). Required.
   */
  readonly entry: string;
  /**
   * Powertools service name (`POWERTOOLS_SERVICE_NAME`): the `service` key of every log line and
   * the `service` dimension of every metric.
   * @default - the name of the entry's folder, e.g. `pipeline-validate`
   */
  readonly serviceName?: string;
  /**
   * Memory in MB (Lambda gives CPU in proportion: 1769 MB is one full vCPU).
   * @default 256
   */
  readonly memorySize?: number;
  /**
   * How long one invocation may run.
   * @default Duration.seconds(30)
   */
  readonly timeout?: Duration;
  /**
   * Extra environment variables, added to the house ones (`NODE_OPTIONS`, `POWERTOOLS_*`,
   * `QUANTSHIFT_COMMIT`), which they cannot replace.
   * @default - none
   */
  readonly environment?: Record<string, string>;
  /**
   * How long the function's log group keeps its logs.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * What happens to the log group when the function is removed from the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly logRemovalPolicy?: RemovalPolicy;
  /**
   * Powertools log level (`POWERTOOLS_LOG_LEVEL`).
   * @default 'INFO'
   */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /**
   * The code's commit (`QUANTSHIFT_COMMIT`).
   * @default - the `commit` context value, else `git rev-parse HEAD` at synth time
   */
  readonly commit?: string;
  /**
   * Reserved concurrency, which also caps the function's concurrency.
   * @default - no reservation: the function shares the account's unreserved concurrency
   */
  readonly reservedConcurrentExecutions?: number;
  /**
   * Description shown in the Lambda console.
   * @default - `QuantShift <serviceName>`
   */
  readonly description?: string;
}

/**
 * The house Lambda function: a TypeScript handler bundled with the local esbuild (no Docker) into
 * a minified ESM bundle with source maps, on Node.js 22 on arm64, X-Ray tracing active, its own
 * log group with a retention, a role that may write only to that log group (and X-Ray), and the
 * Powertools environment.
 *
 * Grants beyond logging are the caller's: give each function exactly what its handler uses.
 */
export class TradingFunction extends NodejsFunction {
  /** The Powertools service name of this function. */
  readonly serviceName: string;

  constructor(scope: Construct, id: string, props: TradingFunctionProps) {
    const serviceName = props.serviceName ?? basename(dirname(props.entry));
    const commit = props.commit ?? resolveCommit(scope);
    const logGroup = new LogGroup(scope, `${id}LogGroup`, {
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    // An own role instead of AWSLambdaBasicExecutionRole (logs on every log group in the account).
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `QuantShift ${serviceName}: writes its own logs; grants added per function`,
    });
    logGroup.grantWrite(role);

    super(scope, id, {
      entry: props.entry,
      handler: 'handler',
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout ?? Duration.seconds(30),
      tracing: Tracing.ACTIVE,
      logGroup,
      role,
      description: props.description ?? `QuantShift ${serviceName}`,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      projectRoot: repoRoot,
      depsLockFilePath: join(repoRoot, 'package-lock.json'),
      environment: {
        ...props.environment,
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: serviceName,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: props.logLevel ?? 'INFO',
        QUANTSHIFT_COMMIT: commit,
      },
      bundling: {
        // The local esbuild from node_modules; never Docker (not on these machines, nor needed).
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        target: 'node22',
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_BANNER,
        minify: true,
        // Error classes keep their names: Lambda reports `error.name` as the error type, which is
        // what Step Functions catches and what the execution fails with.
        keepNames: true,
        logLevel: LogLevel.WARNING,
        sourceMap: true,
        sourcesContent: false,
        // Bundle everything, the AWS SDK included (the code runs with the versions it was tested
        // with), except what only local runs reach through dynamic imports.
        externalModules: [...LOCAL_ONLY_MODULES],
        tsconfig: join(repoRoot, 'tsconfig.json'),
      },
    });
    this.serviceName = serviceName;

    Validations.of(this).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'nodejs22.x is the house runtime: the ESM bundles target node22 and the code is tested on Node 20/22; ' +
        'moving to 24.x is a deliberate upgrade of every function at once, not a per-function change.',
    });
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Active X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords have no resource-level ' +
        "permissions. Logging is limited to the function's own log group.",
    });
  }
}
