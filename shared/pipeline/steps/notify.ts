import type { PipelinePorts, PipelineSummary } from '../common.js';

/** NotifySuccess's payload `{ ok: true, summary }`, or NotifyFailure's `{ ok: false, error }`. */
export interface NotifyEvent {
  ok: boolean;
  summary?: PipelineSummary;
  error?: { Error?: string; Cause?: string };
}

/** NotifySuccess / NotifyFailure. */
export function createNotifyStep(ports: Pick<PipelinePorts, 'notifier'>) {
  return async function notify(event: NotifyEvent): Promise<{ published: true }> {
    if (event.ok && event.summary !== undefined) {
      const s = event.summary;
      const verdict = s.decision.proceed
        ? 'PROCEED to paper trading'
        : `REFINE (failed: ${s.decision.failed.join(', ')})`;
      await ports.notifier.publish({
        subject: `Walk-forward ${s.jobId.slice(0, 8)}: ${s.decision.proceed ? 'proceed' : 'refine'}`,
        severity: 'info',
        text: [
          `Decision: ${verdict}`,
          `Out-of-sample return ${s.outOfSample.returnPct.toFixed(2)}%, Sharpe ${s.outOfSample.sharpe?.toFixed(2) ?? 'n/a'}, max drawdown ${s.outOfSample.maxDrawdownPct.toFixed(2)}%`,
          `Walk-forward efficiency ${s.efficiency?.toFixed(2) ?? 'n/a'} over ${s.windows} windows`,
          `Report: ${s.reportKey}`,
        ].join('\n'),
      });
    } else {
      await ports.notifier.publish({
        subject: 'Walk-forward pipeline failed',
        severity: 'critical',
        text: `${event.error?.Error ?? 'Error'}: ${event.error?.Cause ?? 'no cause given'}`,
      });
    }
    return { published: true };
  };
}
