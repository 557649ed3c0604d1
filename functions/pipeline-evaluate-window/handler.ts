/** Step Functions task `evaluate-window` of the walk-forward pipeline (docs/pipeline.md). */
import { createEvaluateWindowStep } from '../../shared/pipeline/steps/evaluate-window.js';
import { pipelineHandler, pipelineStore } from '../../shared/runtime/pipeline.js';

export const handler = pipelineHandler((env) => createEvaluateWindowStep({ store: pipelineStore(env) }));
