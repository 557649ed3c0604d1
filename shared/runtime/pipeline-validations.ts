import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoStateStore, stateStoreDocumentClient } from '../adapters/dynamodb/state-store.js';
import type { StateStore } from '../core/ports/state-store.js';
import type { PipelineEnv } from './pipeline.js';

/**
 * Where the aggregate step records the walk-forward decision for the live stage's validation
 * gate: the trading state table `STATE_TABLE`, or nowhere when it is not set.
 */
export function pipelineValidations(env: PipelineEnv): Pick<StateStore, 'putValidation'> | undefined {
  if (env.STATE_TABLE === undefined) return undefined;
  return new DynamoStateStore(stateStoreDocumentClient(new DynamoDBClient({})), env.STATE_TABLE);
}
