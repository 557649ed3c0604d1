/** Step Functions task `aggregate` of the walk-forward pipeline (docs/pipeline.md). */
import type { PipelineSteps } from '../../shared/pipeline/steps.js';
import { deployedPipelineSteps } from '../../shared/runtime/pipeline.js';

export const handler = (event: Parameters<PipelineSteps['aggregate']>[0]) =>
  deployedPipelineSteps().aggregate(event);
