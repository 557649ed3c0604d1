/** The `risk-check` step of the live trading day, on its EventBridge schedule (docs/live.md). */
import { riskCheck } from '../../shared/live/risk-check.js';
import { equityLiveHandler } from '../../shared/runtime/equity-live.js';

export const handler = equityLiveHandler('risk-check', riskCheck);
