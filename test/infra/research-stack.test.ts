import { Match } from 'aws-cdk-lib/assertions';
import { afterAll, describe, expect, it } from 'vitest';
import { PIPELINE_FUNCTIONS } from '../../lib/constructs/backtest-pipeline.js';
import {
  actionsOf,
  type CfnResource,
  grantLines,
  readableDefinition,
  removeTestOutdirs,
  resourcesOf,
  roleOf as roleOfIn,
  roleStatements as roleStatementsIn,
  type Statement,
  synthQuantShift,
  TEST_COMMIT,
} from './synth.js';

afterAll(removeTestOutdirs);

const paper = synthQuantShift('paper');
const { template, research } = paper;
const resources = template.toJSON().Resources as Record<string, CfnResource>;

const idsOfType = (type: string) =>
  Object.entries(resources)
    .filter(([, r]) => r.Type === type)
    .map(([id]) => id);
const onlyIdOfType = (type: string, where: (r: CfnResource) => boolean = () => true) => {
  const ids = idsOfType(type).filter((id) => where(resources[id] as CfnResource));
  expect(ids, `one ${type}`).toHaveLength(1);
  return ids[0] as string;
};

const dataBucketId = onlyIdOfType(
  'AWS::S3::Bucket',
  (r) => r.Properties.VersioningConfiguration !== undefined,
);
const logsBucketId = onlyIdOfType(
  'AWS::S3::Bucket',
  (r) => r.Properties.VersioningConfiguration === undefined,
);
const topicId = onlyIdOfType('AWS::SNS::Topic');
const keyId = onlyIdOfType('AWS::KMS::Key');
const secretId = onlyIdOfType('AWS::SecretsManager::Secret');
const stateMachineId = onlyIdOfType('AWS::StepFunctions::StateMachine');

/** Function logical id by Powertools service name (`pipeline-validate`, ...). */
const functionIds = Object.fromEntries(
  idsOfType('AWS::Lambda::Function').map((id) => [
    (resources[id] as CfnResource).Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME,
    id,
  ]),
) as Record<string, string>;
const fn = (name: (typeof PIPELINE_FUNCTIONS)[number]) => functionIds[`pipeline-${name}`] as string;

const roleStatements = (roleId: string) => roleStatementsIn(resources, roleId);
const roleOf = (functionId: string) => roleOfIn(resources, functionId);
const grantsOf = (name: (typeof PIPELINE_FUNCTIONS)[number]) => grantLines(resources, fn(name));
const bucketArn = { 'Fn::GetAtt': [dataBucketId, 'Arn'] };
const objects = (prefix: string) => ({ 'Fn::Join': ['', [bucketArn, `/${prefix}*`]] });
const grant = (action: string, resource: unknown) => `${action} on ${JSON.stringify(resource)}`;

describe('research stack', () => {
  it('is QuantShift-<stage>-Research, and only live has termination protection', () => {
    expect(research.stackName).toBe('QuantShift-paper-Research');
    expect(research.terminationProtection).toBe(false);
    const live = synthQuantShift('live');
    expect(live.research.stackName).toBe('QuantShift-live-Research');
    expect(live.research.terminationProtection).toBe(true);
    live.template.hasResourceProperties('AWS::SecretsManager::Secret', {
      Name: 'quantshift/live/alpaca-data',
    });
    live.template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: 'quantshift-live-walk-forward',
    });
    live.template.resourcePropertiesCountIs('AWS::Logs::LogGroup', { RetentionInDays: 90 }, 8);
  });

  it('holds exactly the resources of the pipeline', () => {
    const counts: Record<string, number> = {};
    for (const r of Object.values(resources)) counts[r.Type] = (counts[r.Type] ?? 0) + 1;
    expect(counts).toEqual({
      'AWS::S3::Bucket': 2,
      'AWS::S3::BucketPolicy': 2,
      'AWS::KMS::Key': 1,
      'AWS::SNS::Topic': 1,
      'AWS::SNS::TopicPolicy': 1,
      'AWS::SecretsManager::Secret': 1,
      'AWS::Lambda::Function': 7,
      'AWS::Logs::LogGroup': 8,
      'AWS::IAM::Role': 8,
      'AWS::IAM::Policy': 9,
      'AWS::StepFunctions::StateMachine': 1,
    });
  });
});

describe('data bucket', () => {
  it('is encrypted, private, versioned, logged to the access-log bucket', () => {
    template.hasResource('AWS::S3::Bucket', {
      Properties: {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        VersioningConfiguration: { Status: 'Enabled' },
        OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
        LoggingConfiguration: { DestinationBucketName: { Ref: logsBucketId }, LogFilePrefix: 'data-bucket/' },
      },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  it('expires jobs/ after 30 days and records/ a day earlier', () => {
    const rules = (resources[dataBucketId] as CfnResource).Properties.LifecycleConfiguration as {
      Rules: Record<string, unknown>[];
    };
    expect(rules.Rules).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          Id: 'expire-jobs',
          Prefix: 'jobs/',
          ExpirationInDays: 30,
          Status: 'Enabled',
        }),
        expect.objectContaining({
          Id: 'expire-records',
          Prefix: 'records/',
          ExpirationInDays: 29,
          Status: 'Enabled',
        }),
        expect.objectContaining({
          Id: 'clean-up',
          AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
          NoncurrentVersionExpiration: { NoncurrentDays: 30 },
        }),
      ]),
    );
  });

  it('denies every request without TLS, on both buckets', () => {
    for (const bucket of [dataBucketId, logsBucketId]) {
      template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: bucket },
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 's3:*',
              Principal: { AWS: '*' },
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
          ]),
        },
      });
    }
  });

  it('has an encrypted, private access-log bucket that expires its logs', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: Match.objectLike({
        BlockPublicAcls: true,
        RestrictPublicBuckets: true,
      }),
      LifecycleConfiguration: { Rules: [Match.objectLike({ ExpirationInDays: 90 })] },
      LoggingConfiguration: Match.absent(),
    });
    // Server access logging delivers through the bucket policy, to the data bucket's prefix only.
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logsBucketId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Action: 's3:PutObject',
            Principal: { Service: 'logging.s3.amazonaws.com' },
          }),
        ]),
      },
    });
  });
});

describe('notification topic and secret', () => {
  it('encrypts the topic with a rotated KMS key and enforces TLS', () => {
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] } });
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: topicId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 'sns:Publish',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  it('creates the Alpaca data secret empty: no value, none generated', () => {
    const secret = resources[secretId] as CfnResource;
    expect(secret.Properties.Name).toBe('quantshift/paper/alpaca-data');
    expect(secret.Properties).not.toHaveProperty('SecretString');
    expect(secret.Properties).not.toHaveProperty('GenerateSecretString');
    template.resourceCountIs('AWS::SecretsManager::ResourcePolicy', 0);
  });
});

describe('functions', () => {
  it('are the seven of docs/pipeline.md', () => {
    expect(Object.keys(functionIds).sort()).toEqual(PIPELINE_FUNCTIONS.map((n) => `pipeline-${n}`).sort());
  });

  it.each(PIPELINE_FUNCTIONS)('%s: nodejs22.x on arm64, ESM handler, tracing, house environment', (name) => {
    const props = (resources[fn(name)] as CfnResource).Properties;
    expect(props.Runtime).toBe('nodejs22.x');
    expect(props.Architectures).toEqual(['arm64']);
    expect(props.Handler).toBe('index.handler');
    expect(props.TracingConfig).toEqual({ Mode: 'Active' });
    expect(props.Environment?.Variables).toMatchObject({
      NODE_OPTIONS: '--enable-source-maps',
      POWERTOOLS_SERVICE_NAME: `pipeline-${name}`,
      POWERTOOLS_METRICS_NAMESPACE: 'QuantShift',
      POWERTOOLS_LOG_LEVEL: 'INFO',
      QUANTSHIFT_COMMIT: TEST_COMMIT,
      DATA_BUCKET: { Ref: dataBucketId },
    });
  });

  it.each(PIPELINE_FUNCTIONS)('%s: logs to its own log group, kept one month', (name) => {
    const props = (resources[fn(name)] as CfnResource).Properties;
    const logGroup = (props.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
    expect(resources[logGroup]?.Type).toBe('AWS::Logs::LogGroup');
    expect(resources[logGroup]?.Properties.RetentionInDays).toBe(30);
    // Its role writes to that log group only, with no managed policy (AWSLambdaBasicExecutionRole: every log group).
    const role = resources[roleOf(fn(name))] as CfnResource;
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    const logs = roleStatements(roleOf(fn(name))).filter((s) =>
      actionsOf(s).some((a) => a.startsWith('logs:')),
    );
    expect(logs).toEqual([
      {
        Effect: 'Allow',
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: { 'Fn::GetAtt': [logGroup, 'Arn'] },
      },
    ]);
  });

  it('gives the secret ARN and the threshold to prepare only, the topic ARN to notify only', () => {
    for (const name of PIPELINE_FUNCTIONS) {
      const vars = (resources[fn(name)] as CfnResource).Properties.Environment?.Variables ?? {};
      if (name === 'prepare') {
        expect(vars.ALPACA_SECRET_ARN).toEqual({ Ref: secretId });
        expect(vars.PIPELINE_DISTRIBUTED_THRESHOLD).toBe('50000');
      } else {
        expect(vars).not.toHaveProperty('ALPACA_SECRET_ARN');
        expect(vars).not.toHaveProperty('PIPELINE_DISTRIBUTED_THRESHOLD');
      }
      if (name === 'notify') expect(vars.TOPIC_ARN).toEqual({ Ref: topicId });
      else expect(vars).not.toHaveProperty('TOPIC_ARN');
    }
  });

  it('sizes the heavy steps larger', () => {
    const sizing = (name: (typeof PIPELINE_FUNCTIONS)[number]) => {
      const p = (resources[fn(name)] as CfnResource).Properties;
      return [p.MemorySize, p.Timeout];
    };
    expect(sizing('optimize-window')).toEqual([1769, 900]);
    expect(sizing('aggregate')).toEqual([2048, 600]);
    expect(sizing('notify')).toEqual([256, 30]);
  });
});

describe('IAM: least privilege', () => {
  const statements = Object.values(resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy')
    .flatMap((r) => (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement);

  it('has no wildcard action, and only Allow statements', () => {
    expect(statements.length).toBeGreaterThan(0);
    for (const s of statements) {
      expect(s.Effect).toBe('Allow');
      for (const action of actionsOf(s)) expect(action, JSON.stringify(s)).not.toContain('*');
    }
  });

  it('uses Resource "*" only for actions without resource-level permissions (X-Ray, log delivery)', () => {
    const unscoped = new Set(
      statements.filter((s) => resourcesOf(s).includes('*')).flatMap((s) => actionsOf(s)),
    );
    expect([...unscoped].sort()).toEqual([
      'logs:CreateLogDelivery',
      'logs:DeleteLogDelivery',
      'logs:DescribeLogGroups',
      'logs:DescribeResourcePolicies',
      'logs:GetLogDelivery',
      'logs:ListLogDeliveries',
      'logs:PutResourcePolicy',
      'logs:UpdateLogDelivery',
      'xray:GetSamplingRules',
      'xray:GetSamplingTargets',
      'xray:PutTelemetryRecords',
      'xray:PutTraceSegments',
    ]);
  });

  it('grants each function exactly what its step uses', () => {
    const list = grant('s3:ListBucket', bucketArn);
    expect(grantsOf('validate')).toEqual([]);
    expect(grantsOf('check-cache')).toEqual([grant('s3:GetObject', objects('records/')), list].sort());
    expect(grantsOf('prepare')).toEqual(
      [
        grant('s3:PutObject', objects('jobs/')),
        grant('s3:GetObject', objects('data/')),
        grant('s3:PutObject', objects('data/')),
        list,
        grant('secretsmanager:DescribeSecret', { Ref: secretId }),
        grant('secretsmanager:GetSecretValue', { Ref: secretId }),
      ].sort(),
    );
    for (const name of ['optimize-window', 'evaluate-window'] as const) {
      expect(grantsOf(name)).toEqual(
        [grant('s3:GetObject', objects('jobs/')), grant('s3:PutObject', objects('jobs/')), list].sort(),
      );
    }
    const [validationGrant, ...aggregateGrants] = grantsOf('aggregate');
    // The walk-forward decision goes to the trading state table (the live gate), one PutItem.
    expect(validationGrant).toMatch(
      /^dynamodb:PutItem on \{"Fn::GetStackOutput":\{.*"StackName":"QuantShift-paper-Trading".*TablesState/,
    );
    expect(aggregateGrants).toEqual(
      [
        grant('s3:GetObject', objects('jobs/')),
        grant('s3:PutObject', objects('jobs/')),
        grant('s3:PutObject', objects('records/')),
        list,
      ].sort(),
    );
    expect(grantsOf('notify')).toEqual(
      [
        grant('kms:Decrypt', { 'Fn::GetAtt': [keyId, 'Arn'] }),
        grant('kms:GenerateDataKey', { 'Fn::GetAtt': [keyId, 'Arn'] }),
        grant('sns:Publish', { Ref: topicId }),
      ].sort(),
    );
  });

  it('lets only notify use the topic key, and only through SNS', () => {
    const kms = roleStatements(roleOf(fn('notify'))).find((s) => actionsOf(s).includes('kms:Decrypt'));
    expect(kms?.Condition).toEqual({
      StringEquals: {
        'kms:ViaService': { 'Fn::Join': ['', ['sns.', { Ref: 'AWS::Region' }, '.amazonaws.com']] },
      },
    });
  });

  it('lets only prepare read the secret, and only the topic publisher publish', () => {
    const policiesMentioning = (needle: unknown) =>
      Object.entries(resources)
        .filter(([, r]) => r.Type === 'AWS::IAM::Policy')
        .filter(([, r]) => JSON.stringify(r.Properties.PolicyDocument).includes(JSON.stringify(needle)))
        .flatMap(([, r]) => (r.Properties.Roles as { Ref: string }[]).map((role) => role.Ref));
    expect(policiesMentioning({ Ref: secretId })).toEqual([roleOf(fn('prepare'))]);
    expect(policiesMentioning({ Ref: topicId })).toEqual([roleOf(fn('notify'))]);
    expect(statements.filter((s) => actionsOf(s).some((a) => a.startsWith('secretsmanager:')))).toHaveLength(
      1,
    );
    expect(statements.filter((s) => actionsOf(s).includes('sns:Publish'))).toHaveLength(1);
  });

  it('lets the state machine invoke exactly the seven functions and read items from the data bucket', () => {
    const role = (
      (resources[stateMachineId] as CfnResource).Properties.RoleArn as { 'Fn::GetAtt': [string] }
    )['Fn::GetAtt'][0];
    const mine = roleStatements(role);
    const invoked = mine
      .filter((s) => actionsOf(s).includes('lambda:InvokeFunction'))
      .flatMap((s) => resourcesOf(s))
      .map((r) => JSON.stringify(r));
    const expected = PIPELINE_FUNCTIONS.flatMap((name) => {
      const arn = { 'Fn::GetAtt': [fn(name), 'Arn'] };
      return [JSON.stringify(arn), JSON.stringify({ 'Fn::Join': ['', [arn, ':*']] })];
    });
    expect(invoked.sort()).toEqual(expected.sort());
    const reads = mine.filter((s) => actionsOf(s).includes('s3:GetObject'));
    expect(reads).toHaveLength(1);
    expect(JSON.stringify(reads[0]?.Resource)).toContain(JSON.stringify({ Ref: dataBucketId }));
    expect(actionsOf(reads[0] as Statement)).toEqual(['s3:GetObject']);
  });
});

describe('state machine', () => {
  const machine = (resources[stateMachineId] as CfnResource).Properties;
  const definition = readableDefinition(machine.DefinitionString);
  const states = definition.States;
  const arnOf = (name: (typeof PIPELINE_FUNCTIONS)[number]) => `arn:${fn(name)}`;
  const catchAll = [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'NotifyFailure' }];
  /** The states of a Map state's item processor. */
  const processorStates = (map: string) => {
    const processor = states[map]?.ItemProcessor as
      | { States: Record<string, Record<string, unknown>> }
      | undefined;
    if (processor === undefined) throw new Error(`${map} has no ItemProcessor`);
    return processor.States;
  };

  it('logs everything with execution data to a retained log group, and traces with X-Ray', () => {
    expect(machine.StateMachineName).toBe('quantshift-paper-walk-forward');
    expect(machine.LoggingConfiguration).toMatchObject({ Level: 'ALL', IncludeExecutionData: true });
    expect(machine.TracingConfiguration).toEqual({ Enabled: true });
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: '/aws/vendedlogs/states/quantshift-paper-walk-forward',
      RetentionInDays: 30,
    });
  });

  it('is JSONPath (the default query language) and starts at ValidateInput', () => {
    expect(definition.QueryLanguage).toBeUndefined();
    expect(definition.StartAt).toBe('ValidateInput');
  });

  it('has the states of docs/pipeline.md, with their types', () => {
    const types = Object.fromEntries(Object.entries(states).map(([name, s]) => [name, s.Type]));
    expect(types).toEqual({
      ValidateInput: 'Task',
      CheckCache: 'Task',
      IsCached: 'Choice',
      ReturnCached: 'Pass',
      PrepareData: 'Task',
      UseDistributedMap: 'Choice',
      InlineWindows: 'Map',
      DistributedWindows: 'Map',
      Aggregate: 'Task',
      NotifySuccess: 'Task',
      NotifyFailure: 'Task',
      Failed: 'Fail',
      Succeeded: 'Succeed',
    });
  });

  it('invokes each function directly (payloadResponseOnly), the right one per state', () => {
    expect(states.ValidateInput).toMatchObject({ Resource: arnOf('validate'), Next: 'CheckCache' });
    expect(states.CheckCache).toMatchObject({ Resource: arnOf('check-cache'), Next: 'IsCached' });
    expect(states.PrepareData).toMatchObject({
      Resource: arnOf('prepare'),
      InputPath: '$.job',
      Next: 'UseDistributedMap',
    });
    expect(states.Aggregate).toMatchObject({
      Resource: arnOf('aggregate'),
      InputPath: '$.job',
      Next: 'NotifySuccess',
    });
    for (const name of ['ValidateInput', 'CheckCache', 'PrepareData', 'Aggregate']) {
      expect(states[name]).not.toHaveProperty('Parameters');
      expect(states[name]).not.toHaveProperty('ResultSelector');
    }
  });

  it('branches on $.cached and $.distributed', () => {
    expect(states.IsCached).toMatchObject({
      Choices: [{ Variable: '$.cached', BooleanEquals: true, Next: 'ReturnCached' }],
      Default: 'PrepareData',
    });
    expect(states.ReturnCached).toEqual({ Type: 'Pass', OutputPath: '$.result', Next: 'Succeeded' });
    expect(states.UseDistributedMap).toMatchObject({
      Choices: [{ Variable: '$.distributed', BooleanEquals: true, Next: 'DistributedWindows' }],
      Default: 'InlineWindows',
    });
  });

  it('runs the windows in an inline Map over $.items', () => {
    expect(states.InlineWindows).toMatchObject({
      ItemsPath: '$.items',
      ResultPath: null,
      MaxConcurrency: 0,
      Next: 'Aggregate',
      ItemProcessor: {
        ProcessorConfig: { Mode: 'INLINE' },
        StartAt: 'OptimizeWindow',
        States: {
          OptimizeWindow: { Type: 'Task', Resource: arnOf('optimize-window'), Next: 'EvaluateWindow' },
          EvaluateWindow: { Type: 'Task', Resource: arnOf('evaluate-window'), End: true },
        },
      },
    });
  });

  it('runs big sweeps in a Distributed Map reading the items from the data bucket, with the same two functions', () => {
    const distributed = states.DistributedWindows as Record<string, unknown>;
    expect(distributed).toMatchObject({
      ResultPath: null,
      Next: 'Aggregate',
      ItemReader: {
        Resource: 'arn:partition:states:::s3:getObject',
        ReaderConfig: { InputType: 'JSON' },
        Parameters: { Bucket: `ref:${dataBucketId}`, 'Key.$': '$.itemsKey' },
      },
      ItemProcessor: {
        ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' },
        StartAt: 'OptimizeWindowDistributed',
        States: {
          OptimizeWindowDistributed: {
            Type: 'Task',
            Resource: arnOf('optimize-window'),
            Next: 'EvaluateWindowDistributed',
          },
          EvaluateWindowDistributed: { Type: 'Task', Resource: arnOf('evaluate-window'), End: true },
        },
      },
    });
    expect(distributed).not.toHaveProperty('ItemsPath');
    const inner = (map: string) => Object.values(processorStates(map)).map((s) => s.Resource);
    expect(inner('DistributedWindows')).toEqual(inner('InlineWindows'));
  });

  it('catches States.ALL into $.error and notifies the failure from every top-level Task and Map', () => {
    for (const name of [
      'ValidateInput',
      'CheckCache',
      'PrepareData',
      'InlineWindows',
      'DistributedWindows',
      'Aggregate',
      'NotifySuccess',
    ]) {
      expect(states[name]?.Catch, name).toEqual(catchAll);
    }
    expect(states.NotifyFailure).not.toHaveProperty('Catch');
  });

  it('notifies success with the summary and failure with the error, then succeeds or fails with the step error', () => {
    expect(states.NotifySuccess).toMatchObject({
      Resource: arnOf('notify'),
      Parameters: { ok: true, 'summary.$': '$' },
      ResultPath: null,
      Next: 'Succeeded',
    });
    expect(states.NotifyFailure).toMatchObject({
      Resource: arnOf('notify'),
      Parameters: { ok: false, 'error.$': '$.error' },
      ResultPath: null,
      Next: 'Failed',
    });
    expect(states.Failed).toEqual({ Type: 'Fail', ErrorPath: '$.error.Error', CausePath: '$.error.Cause' });
  });

  it('retries Lambda service errors, and throttling in the window steps', () => {
    for (const map of ['InlineWindows', 'DistributedWindows']) {
      for (const state of Object.values(processorStates(map))) {
        const retried = (state.Retry as { ErrorEquals: string[] }[]).flatMap((r) => r.ErrorEquals);
        expect(retried).toContain('Lambda.TooManyRequestsException');
      }
    }
  });
});

describe('outputs', () => {
  it('names the bucket, the topic, the state machine and its console page', () => {
    template.hasOutput('DataBucketName', { Value: { Ref: dataBucketId } });
    template.hasOutput('AlpacaDataSecretArn', {
      Value: { Ref: secretId },
      Description: Match.stringLikeRegexp('put-secret-value --secret-id quantshift/paper/alpaca-data'),
    });
    template.hasOutput('TopicArn', { Value: { Ref: topicId } });
    template.hasOutput('StateMachineArn', { Value: { Ref: stateMachineId } });
    const url = JSON.stringify(template.findOutputs('StateMachineConsoleUrl'));
    expect(url).toContain('.console.aws.amazon.com/states/home?region=');
    expect(url).toContain('#/statemachines/view/');
    expect(url).toContain(JSON.stringify({ Ref: stateMachineId }));
  });
});
