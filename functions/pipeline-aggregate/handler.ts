/** Step Functions task `aggregate` of the walk-forward pipeline (docs/pipeline.md). */
import { createAggregateStep } from '../../shared/pipeline/steps/aggregate.js';
import { pipelineHandler, pipelineStore } from '../../shared/runtime/pipeline.js';
import { pipelineValidations } from '../../shared/runtime/pipeline-validations.js';

export const handler = pipelineHandler((env) =>
  createAggregateStep({
    store: pipelineStore(env),
    now: () => new Date(),
    validations: pipelineValidations(env),
  }),
);
