/** Step Functions task `validate` of the walk-forward pipeline (docs/pipeline.md). */
import { createValidateStep } from '../../shared/pipeline/steps/validate.js';
import { pipelineHandler } from '../../shared/runtime/pipeline.js';

export const handler = pipelineHandler((env) =>
  createValidateStep({ now: () => new Date(), gitCommit: env.QUANTSHIFT_COMMIT }),
);
