/** The `risk-check` step of the live trading day, on its EventBridge schedule (docs/live.md). */
import { riskCheck } from '../../shared/live/risk-check.js';
import { liveHandler } from '../../shared/runtime/live.js';

export const handler = liveHandler('risk-check', riskCheck);
