import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { stateTableKeySchema } from '../../shared/adapters/dynamodb/schema.js';

/** Properties of {@link StateTables}. */
export interface StateTablesProps {
  /**
   * Deletion protection on both tables (the live stage): a `cdk destroy` or a console click
   * cannot drop the trading record.
   * @default false
   */
  readonly deletionProtection?: boolean;
  /**
   * What happens to the tables when they leave the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The live functions' durable state: the single state table of docs/state-store.md (its key
 * schema and TTL attribute come from the adapter's own definition, so the two cannot drift) and
 * the Powertools idempotency table (`id`, TTL on `expiration`). Both on demand, encrypted with
 * the AWS-managed KMS key, with point-in-time recovery.
 */
export class StateTables extends Construct {
  /** Sessions, intents, fills, snapshots, positions, risk state, audit, validation records. */
  readonly state: Table;
  /** One record per (step, scheduled time): a retried or duplicated invocation returns the first result. */
  readonly idempotency: Table;

  constructor(scope: Construct, id: string, props: StateTablesProps = {}) {
    super(scope, id);
    const common = {
      billingMode: BillingMode.PAY_PER_REQUEST,
      encryption: TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: props.deletionProtection ?? false,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    };
    const { partitionKey, sortKey, timeToLiveAttribute } = stateTableKeySchema;
    this.state = new Table(this, 'State', {
      ...common,
      partitionKey: { name: partitionKey.name, type: AttributeType.STRING },
      sortKey: { name: sortKey.name, type: AttributeType.STRING },
      timeToLiveAttribute,
    });
    this.idempotency = new Table(this, 'Idempotency', {
      ...common,
      partitionKey: { name: 'id', type: AttributeType.STRING },
      timeToLiveAttribute: 'expiration',
    });
  }
}
