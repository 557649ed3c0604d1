/**
 * The kill switch's Lambda handler, for either bot: invoked directly by the loss and drawdown
 * CloudWatch alarms (a Lambda alarm action). On a transition into ALARM it halts new entries,
 * cancels open entry orders, flattens when configured and reports (docs/live.md, "Halt and
 * resume"); OK and INSUFFICIENT_DATA are logged and ignored. Idempotency is keyed by the alarm's
 * ARN, its new state and that state's timestamp: a redelivered event returns the first result, a
 * new transition into ALARM acts again (harmlessly: the kill switch is idempotent).
 */
import { killSwitch } from '../live/kill-switch.js';
import {
  type BaseLiveEnv,
  type CloudWatchAlarmEvent,
  cloudWatchAlarmEventSchema,
  type LiveRuntime,
  liveEventHandler,
  logger,
} from './live.js';

/** What the kill switch reads of its bot's environment: `KILL_SWITCH_FLATTEN` overrides the config. */
export interface KillSwitchEnv extends BaseLiveEnv {
  readonly KILL_SWITCH_FLATTEN?: boolean | undefined;
}

/** The kill-switch handler of a bot (the equity bot's runtime, or the crypto bot's). */
export function killSwitchAlarmHandler<V extends KillSwitchEnv>(runtime: LiveRuntime<V>) {
  return liveEventHandler({
    name: 'kill-switch',
    schema: cloudWatchAlarmEventSchema,
    idempotencyKey: '[alarmArn, alarmData.state.value, alarmData.state.timestamp]',
    runtime,
    run: async (event: CloudWatchAlarmEvent, context, env: V) => {
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
}
