/** The `generate-signals` step of the live trading day, on its EventBridge schedule (docs/live.md). */
import { generateSignals } from '../../shared/live/generate-signals.js';
import { equityLiveHandler } from '../../shared/runtime/equity-live.js';

export const handler = equityLiveHandler('generate-signals', generateSignals);
