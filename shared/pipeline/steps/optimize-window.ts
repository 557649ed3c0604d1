import { inProcessEvaluator } from '../../core/research/evaluate.js';
import { chooseWindowParams } from '../../core/research/walk-forward.js';
import { keys, type PipelinePorts, type WindowItem, writeJson } from '../common.js';
import { JobContexts, plannedWindow, unitSeries } from '../context.js';

/** A window whose parameters were chosen in-sample: the choice is at `choiceKey` in the store. */
export type ChosenWindow = WindowItem & { choiceKey: string };

/** OptimizeWindow: choose the window's parameters in-sample. */
export function createOptimizeWindowStep(
  ports: Pick<PipelinePorts, 'store' | 'evaluator'>,
  contexts = new JobContexts(ports.store),
) {
  const evaluator = ports.evaluator ?? inProcessEvaluator;
  return async function optimizeWindow(item: WindowItem): Promise<ChosenWindow> {
    const ctx = await contexts.get(item.jobId);
    const { unit, window, settings } = plannedWindow(ctx, item);
    const choice = await chooseWindowParams(settings, unitSeries(ctx, unit), window, evaluator);
    const choiceKey = keys.choice(item);
    await writeJson(ports.store, choiceKey, choice);
    return { jobId: item.jobId, unit: item.unit, window: item.window, choiceKey };
  };
}
