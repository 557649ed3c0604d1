/**
 * The equity bot's kill switch, invoked directly by the loss and drawdown CloudWatch alarms (see
 * `shared/runtime/kill-switch-handler.ts`; docs/live.md, "Halt and resume").
 */
import { killSwitchAlarmHandler } from '../../shared/runtime/kill-switch-handler.js';
import { equityRuntime } from '../../shared/runtime/live.js';

export const handler = killSwitchAlarmHandler(equityRuntime);
