/** The crypto bot's `end-of-day` step (Coinbase, UTC days, every day; docs/crypto.md). */
import { endOfDay } from '../../shared/live/end-of-day.js';
import { cryptoLiveHandler } from '../../shared/runtime/crypto-live.js';

export const handler = cryptoLiveHandler('end-of-day', endOfDay);
