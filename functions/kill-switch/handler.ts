/**
 * The equity bot's kill switch, invoked directly by the loss and drawdown CloudWatch alarms (see
 * `shared/runtime/kill-switch-handler.ts`; docs/live.md, "Halt and resume").
 */

import { equityRuntime } from '../../shared/runtime/equity-live.js';
import { killSwitchAlarmHandler } from '../../shared/runtime/kill-switch-handler.js';

export const handler = killSwitchAlarmHandler(equityRuntime);
