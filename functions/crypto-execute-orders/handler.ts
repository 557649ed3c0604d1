/** The crypto bot's `execute-orders` step (Coinbase, UTC days, every day; docs/crypto.md). */
import { executeOrders } from '../../shared/live/execute-orders.js';
import { cryptoLiveHandler } from '../../shared/runtime/crypto-live.js';

export const handler = cryptoLiveHandler('execute-orders', executeOrders);
