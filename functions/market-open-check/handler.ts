/** The `market-open-check` step of the live trading day, on its EventBridge schedule (docs/live.md). */
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { liveHandler } from '../../shared/runtime/live.js';

export const handler = liveHandler('market-open-check', marketOpenCheck);
