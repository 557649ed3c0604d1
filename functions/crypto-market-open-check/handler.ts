/** The crypto bot's `market-open-check` step (Coinbase, UTC days, every day; docs/crypto.md). */
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { cryptoLiveHandler } from '../../shared/runtime/crypto-live.js';

export const handler = cryptoLiveHandler('market-open-check', marketOpenCheck);
