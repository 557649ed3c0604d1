/** Step Functions task `optimize-window` of the walk-forward pipeline (docs/pipeline.md). */
import type { PipelineSteps } from '../../shared/pipeline/steps.js';
import { deployedPipelineSteps } from '../../shared/runtime/pipeline.js';

export const handler = (event: Parameters<PipelineSteps['optimizeWindow']>[0]) =>
  deployedPipelineSteps().optimizeWindow(event);
