/** Step Functions task `notify` of the walk-forward pipeline (docs/pipeline.md). */
import type { PipelineSteps } from '../../shared/pipeline/steps.js';
import { deployedPipelineSteps } from '../../shared/runtime/pipeline.js';

export const handler = (event: Parameters<PipelineSteps['notify']>[0]) =>
  deployedPipelineSteps().notify(event);
