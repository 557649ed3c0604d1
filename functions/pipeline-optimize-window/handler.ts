/** Step Functions task `optimize-window` of the walk-forward pipeline (docs/pipeline.md). */
import { createOptimizeWindowStep } from '../../shared/pipeline/steps/optimize-window.js';
import { pipelineHandler, pipelineStore } from '../../shared/runtime/pipeline.js';

export const handler = pipelineHandler((env) => createOptimizeWindowStep({ store: pipelineStore(env) }));
