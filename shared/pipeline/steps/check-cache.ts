import { type JobSpec, keys, type PipelinePorts, type PipelineSummary } from '../common.js';

/** CheckCache's output: the job, and the stored summary when the same job already ran. */
export interface CheckCacheOutput {
  job: JobSpec;
  cached: boolean;
  result?: PipelineSummary;
}

/** CheckCache: a job already run returns its stored summary. */
export function createCheckCacheStep(ports: Pick<PipelinePorts, 'store'>) {
  return async function checkCache(spec: JobSpec): Promise<CheckCacheOutput> {
    const record = await ports.store.getText(keys.record(spec.jobId));
    if (record === undefined) return { job: spec, cached: false };
    return { job: spec, cached: true, result: JSON.parse(record) as PipelineSummary };
  };
}
