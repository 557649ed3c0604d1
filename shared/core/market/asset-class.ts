/**
 * Asset classes kept apart: the equity bot trades US equities on Alpaca, the crypto bot trades spot
 * crypto products on Coinbase. Each refuses the other's symbols with one named error, and each
 * annualises its daily figures with its own number of sessions a year.
 */
import { CryptoSymbolRefusedError, EquitySymbolRefusedError } from '../errors.js';

export type AssetClass = 'equity' | 'crypto';

/**
 * Daily periods in a year: 252 NYSE sessions for equities, 365 UTC days for crypto (the market
 * never closes). Sharpe, Sortino, volatility and the deflated Sharpe ratio follow it.
 */
export const PERIODS_PER_YEAR: Readonly<Record<AssetClass, number>> = { equity: 252, crypto: 365 };

export function periodsPerYear(assetClass: AssetClass): number {
  return PERIODS_PER_YEAR[assetClass];
}

/** Anything that looks like a crypto pair: `BTC/USD`, `BTC-USD`, `BTCUSD`, `ETHUSDT`, `SOL-USDC`. */
const CRYPTO_LIKE = /\/|-(USD|USDT|USDC|EUR|GBP|BTC|ETH)$|(USD|USDT|USDC)$/;
/** A US equity ticker: `SPY`, `BRK.B`. */
const EQUITY_TICKER = /^[A-Z]{1,5}(\.[A-Z])?$/;
/** A Coinbase spot product id, BASE-QUOTE: `BTC-USD`, `ETH-USDC`. */
const CRYPTO_PRODUCT = /^[A-Z0-9]{2,10}-(USD|USDC|USDT|EUR|GBP|BTC|ETH)$/;

/** Whether a symbol (upper case) looks like a crypto pair in any common notation. */
export function isCryptoLike(symbol: string): boolean {
  return CRYPTO_LIKE.test(symbol);
}

/** Whether a symbol is a US equity ticker that is not also a crypto pair. */
export function isEquityTicker(symbol: string): boolean {
  return EQUITY_TICKER.test(symbol) && !CRYPTO_LIKE.test(symbol);
}

/** Whether a symbol is a Coinbase spot product id (`BASE-QUOTE`). */
export function isCryptoProduct(symbol: string): boolean {
  return CRYPTO_PRODUCT.test(symbol);
}

/** The refusal message of a symbol of the other asset class; null when the class accepts it. */
export function assetClassRefusal(assetClass: AssetClass, symbol: string): string | null {
  if (assetClass === 'equity' && isCryptoLike(symbol)) {
    return `crypto symbols are not allowed in the equity watchlist (asset classes are kept apart): ${symbol}; the crypto bot has its own config (assetClass: crypto)`;
  }
  if (assetClass === 'crypto' && isEquityTicker(symbol)) {
    return `equity tickers are not allowed in the crypto watchlist (asset classes are kept apart): ${symbol}; the equity bot has its own config`;
  }
  return null;
}

/**
 * Throws the named refusal when `symbol` belongs to the other asset class:
 * {@link CryptoSymbolRefusedError} for the equity bot, {@link EquitySymbolRefusedError} for the
 * crypto bot. `where` prefixes the message (a file and key, or an adapter call).
 */
export function assertAssetClass(assetClass: AssetClass, symbol: string, where: string): void {
  const normalized = symbol.trim().toUpperCase();
  const refusal = assetClassRefusal(assetClass, normalized);
  if (refusal === null) return;
  const message = `${where}: ${refusal}`;
  throw assetClass === 'equity'
    ? new CryptoSymbolRefusedError(normalized, message)
    : new EquitySymbolRefusedError(normalized, message);
}
