/** The crypto bot's `risk-check` step (Coinbase, UTC days, every day; docs/crypto.md). */
import { riskCheck } from '../../shared/live/risk-check.js';
import { cryptoLiveHandler } from '../../shared/runtime/crypto-live.js';

export const handler = cryptoLiveHandler('risk-check', riskCheck);
