/** The `end-of-day` step of the live trading day, on its EventBridge schedule (docs/live.md). */
import { endOfDay } from '../../shared/live/end-of-day.js';
import { equityLiveHandler } from '../../shared/runtime/equity-live.js';

export const handler = equityLiveHandler('end-of-day', endOfDay);
