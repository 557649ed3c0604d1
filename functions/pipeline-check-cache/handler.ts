/** Step Functions task `check-cache` of the walk-forward pipeline (docs/pipeline.md). */
import { createCheckCacheStep } from '../../shared/pipeline/steps/check-cache.js';
import { pipelineHandler, pipelineStore } from '../../shared/runtime/pipeline.js';

export const handler = pipelineHandler((env) => createCheckCacheStep({ store: pipelineStore(env) }));
