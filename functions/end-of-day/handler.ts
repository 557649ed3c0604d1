/** The `end-of-day` step of the live trading day, on its EventBridge schedule (docs/live.md). */
import { endOfDay } from '../../shared/live/end-of-day.js';
import { liveHandler } from '../../shared/runtime/live.js';

export const handler = liveHandler('end-of-day', endOfDay);
