/** Step Functions task `notify` of the walk-forward pipeline (docs/pipeline.md). */
import { createNotifyStep } from '../../shared/pipeline/steps/notify.js';
import { pipelineHandler } from '../../shared/runtime/pipeline.js';
import { pipelineNotifier } from '../../shared/runtime/pipeline-notifier.js';

export const handler = pipelineHandler((env) => createNotifyStep({ notifier: pipelineNotifier(env) }));
