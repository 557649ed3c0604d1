/** The crypto bot's hourly funding-rate monitor (BTC and ETH perpetual-style futures; docs/crypto.md). */
import { cryptoFundingHandler } from '../../shared/runtime/crypto-live.js';

export const handler = cryptoFundingHandler();
