/** The `market-open-check` step of the live trading day, on its EventBridge schedule (docs/live.md). */
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { equityLiveHandler } from '../../shared/runtime/equity-live.js';

export const handler = equityLiveHandler('market-open-check', marketOpenCheck);
