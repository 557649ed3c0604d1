/** The `generate-signals` step of the live trading day, on its EventBridge schedule (docs/live.md). */
import { generateSignals } from '../../shared/live/generate-signals.js';
import { liveHandler } from '../../shared/runtime/live.js';

export const handler = liveHandler('generate-signals', generateSignals);
