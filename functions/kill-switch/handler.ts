/**
 * The kill switch, invoked directly by the loss and drawdown CloudWatch alarms (a Lambda alarm
 * action). On a transition into ALARM it halts new entries, cancels open entry orders, flattens
 * when configured and reports (docs/live.md, "Halt and resume"); OK and INSUFFICIENT_DATA are
 * logged and ignored. Idempotency is keyed by the alarm's ARN, its new state and that state's
 * timestamp: a redelivered event returns the first result, a new transition into ALARM acts again
 * (harmlessly: the kill switch is idempotent).
 */
import { killSwitch } from '../../shared/live/kill-switch.js';
import {
  type CloudWatchAlarmEvent,
  cloudWatchAlarmEventSchema,
  liveEventHandler,
  logger,
} from '../../shared/runtime/live.js';

export const handler = liveEventHandler({
  name: 'kill-switch',
  schema: cloudWatchAlarmEventSchema,
  idempotencyKey: '[alarmArn, alarmData.state.value, alarmData.state.timestamp]',
  run: async (event: CloudWatchAlarmEvent, context, env) => {
    const { alarmName, state, previousState } = event.alarmData;
    logger.appendKeys({ alarmName });
    if (state.value !== 'ALARM') {
      logger.info('alarm is not in ALARM: the kill switch does nothing', {
        state: state.value,
        previousState: previousState.value,
      });
      return { action: 'ignored' as const, alarmName, state: state.value };
    }
    const ctx = await context();
    // `KILL_SWITCH_FLATTEN=true|false` overrides the config's `live.killSwitch.flatten` (default false).
    const flatten = env.KILL_SWITCH_FLATTEN ?? ctx.config.live.killSwitch?.flatten ?? false;
    const result = await killSwitch(ctx, {
      reason: `alarm ${alarmName}: ${state.reason}`,
      by: `alarm:${alarmName}`,
      time: state.timestamp,
      flatten,
      details: {
        alarmArn: event.alarmArn,
        previousState: previousState.value,
        region: event.region,
        accountId: event.accountId,
      },
    });
    return { action: 'halt' as const, alarmName, flatten, ...result };
  },
});
