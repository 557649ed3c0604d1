import type { PipelinePorts } from './common.js';
import { JobContexts } from './context.js';
import { createAggregateStep } from './steps/aggregate.js';
import { createCheckCacheStep } from './steps/check-cache.js';
import { createEvaluateWindowStep } from './steps/evaluate-window.js';
import { createNotifyStep } from './steps/notify.js';
import { createOptimizeWindowStep } from './steps/optimize-window.js';
import { createPrepareStep } from './steps/prepare.js';
import { createValidateStep } from './steps/validate.js';

export {
  type JobSpec,
  PipelineInputError,
  type PipelinePorts,
  PipelineStateError,
  type PipelineSummary,
  type WindowItem,
} from './common.js';
export { type PipelineInput, pipelineInputSchema } from './steps/validate.js';

/**
 * The pipeline's steps, one per Task state, over ports, with one job-context cache between them:
 * what the local runner and `quantshift pipeline start` use. Each deployed function builds only
 * its own step from `shared/pipeline/steps/<step>.ts` (with only the ports that step uses), so its
 * bundle carries nothing of the others (no report renderer in prepare, no Alpaca in aggregate).
 */
export function createPipelineSteps(ports: PipelinePorts) {
  const contexts = new JobContexts(ports.store);
  return {
    validate: createValidateStep(ports),
    checkCache: createCheckCacheStep(ports),
    prepare: createPrepareStep(ports, contexts),
    optimizeWindow: createOptimizeWindowStep(ports, contexts),
    evaluateWindow: createEvaluateWindowStep(ports, contexts),
    aggregate: createAggregateStep(ports, contexts),
    notify: createNotifyStep(ports),
  };
}

export type PipelineSteps = ReturnType<typeof createPipelineSteps>;
