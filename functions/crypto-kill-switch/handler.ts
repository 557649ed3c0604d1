/**
 * The crypto bot's kill switch (Coinbase, its own table; docs/crypto.md), invoked directly by its
 * loss and drawdown CloudWatch alarms: the same handler and kill switch as the equity bot's.
 */
import { cryptoRuntime } from '../../shared/runtime/crypto-live.js';
import { killSwitchAlarmHandler } from '../../shared/runtime/kill-switch-handler.js';

export const handler = killSwitchAlarmHandler(cryptoRuntime);
