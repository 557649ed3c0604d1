/** The crypto bot's `generate-signals` step (Coinbase, UTC days, every day; docs/crypto.md). */
import { generateSignals } from '../../shared/live/generate-signals.js';
import { cryptoLiveHandler } from '../../shared/runtime/crypto-live.js';

export const handler = cryptoLiveHandler('generate-signals', generateSignals);
