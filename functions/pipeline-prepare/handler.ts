/** Step Functions task `prepare` of the walk-forward pipeline (docs/pipeline.md). */
import { createPrepareStep } from '../../shared/pipeline/steps/prepare.js';
import { pipelineHandler, pipelineStore } from '../../shared/runtime/pipeline.js';
import { pipelineMarketData } from '../../shared/runtime/pipeline-market-data.js';

export const handler = pipelineHandler((env) =>
  createPrepareStep({
    store: pipelineStore(env),
    marketData: pipelineMarketData(env),
    distributedThreshold: env.PIPELINE_DISTRIBUTED_THRESHOLD,
  }),
);
