/**
 * Every failure the core can name has its own class, so callers branch on the class and
 * messages stay precise. The CLI prints `error.message` as one line and exits non-zero.
 */
export class QuantShiftError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A data file that is not OHLCV bars at all (wrong columns, ticks, quotes, undated rows). */
export class NotBarDataError extends QuantShiftError {
  constructor(
    readonly file: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: not OHLCV bar data: ${reason}`, options);
  }
}

/** A row of a bar file that breaks a rule; the message names `file:line`. */
export class BadBarRowError extends QuantShiftError {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}:${line}: ${reason}`, options);
  }
}

/** Configuration that fails validation; the message names the key path. */
export class ConfigError extends QuantShiftError {}

/** A command-line flag or argument that cannot be used. */
export class UsageError extends QuantShiftError {}

/** Not enough bars for what was asked (warm-up longer than the data, empty range). */
export class InsufficientDataError extends QuantShiftError {}

/** Parameters that a strategy or indicator cannot run with. */
export class InvalidParameterError extends QuantShiftError {}

/** A data file that does not exist; the message names the path. */
export class DataFileNotFoundError extends QuantShiftError {
  constructor(
    readonly file: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: data file not found`, options);
  }
}

/**
 * A market-data request that failed: an HTTP error status (named in the message and kept in
 * `status`), an unreachable server or a timeout. Subclasses name the conditions callers branch on.
 */
export class MarketDataError extends QuantShiftError {
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The provider kept answering 429 (rate limited) after every allowed retry. */
export class RateLimitedError extends MarketDataError {}

/** The provider refused the credentials (401) or their permissions (403). */
export class MarketDataAuthError extends MarketDataError {}

/** A provider response that breaks its schema (a missing or non-finite bar field, a bad timestamp). */
export class MarketDataResponseError extends MarketDataError {}

/**
 * A state-store call that failed for a reason other than a lost conditional write (throttled,
 * unreachable, refused, a table that does not exist); `operation` names the call and `cause` keeps
 * the AWS error.
 */
export class StateStoreError extends QuantShiftError {
  constructor(
    readonly operation: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`state store ${operation}: ${message}`, options);
  }
}

/** A stored state item that breaks its schema; the message names the item's key and the field. */
export class StateStoreCorruptError extends QuantShiftError {
  constructor(
    readonly key: string,
    readonly field: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`state store item ${key}: corrupt field ${field}: ${reason}`, options);
  }
}

/** A record or argument the state store refuses to write or query with; the message names the field. */
export class StateStoreInputError extends QuantShiftError {
  constructor(
    readonly entity: string,
    readonly field: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`state store ${entity}: invalid ${field}: ${reason}`, options);
  }
}

/**
 * A failure of the cache (Redis over the Upstash REST API). The cache is an accelerator: callers
 * branch on the subclasses to decide whether to degrade (a miss, a skipped write) or stop.
 */
export class CacheError extends QuantShiftError {}

/**
 * The cache could not be reached or refused a command (network, auth, server or Redis error);
 * `operation` names the cache call and `key` the full Redis key.
 */
export class CacheUnavailableError extends CacheError {
  constructor(
    readonly operation: string,
    readonly key: string,
    options?: { cause?: unknown },
  ) {
    // Client messages can quote the whole command (a 300 KB bar payload): keep the head only.
    const full = options?.cause instanceof Error ? options.cause.message : String(options?.cause ?? '');
    const reason = full.length > 300 ? `${full.slice(0, 300)}…` : full;
    super(`cache ${operation} ${key}: unavailable${reason ? `: ${reason}` : ''}`, options);
  }
}

/** A cached value that breaks its schema (truncated, hand-edited, another version's layout); read as a miss. */
export class CacheCorruptError extends CacheError {
  constructor(
    readonly key: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cache ${key}: corrupt value: ${reason}`, options);
  }
}

/** A value the cache cannot store (a snapshot that is not JSON, bar columns of different lengths). */
export class CacheValueError extends CacheError {
  constructor(
    readonly key: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cache ${key}: cannot store value: ${reason}`, options);
  }
}

/** The `redis-server` binary is not installed (Debian package `redis-server`). */
export class RedisServerNotFoundError extends QuantShiftError {
  constructor(
    readonly binary: string,
    options?: { cause?: unknown },
  ) {
    super(
      `${binary}: not found; install the Debian package 'redis-server' (npm test installs it: scripts/ensure-debian-package.sh, or apt-get install redis-server)`,
      options,
    );
  }
}

/** A local `redis-server` that exited or did not answer PING while starting; the message carries its output. */
export class RedisServerStartError extends QuantShiftError {}

/** The local Upstash REST bridge could not start (its Redis unreachable, its port taken). */
export class UpstashBridgeStartError extends QuantShiftError {}

/** A broker call that failed; subclasses name the conditions callers branch on. */
export class BrokerError extends QuantShiftError {
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The broker refused the request for good (a final 4xx), with the broker's message. */
export class BrokerRejectedError extends BrokerError {
  constructor(
    message: string,
    status?: number,
    /** The broker's error code, e.g. Alpaca's 40310000. */
    readonly code?: number,
    options?: { cause?: unknown },
  ) {
    super(message, status, options);
  }
}

/** The broker already has an order with this client order id (Alpaca: 422): it was submitted before. */
export class DuplicateClientOrderIdError extends BrokerError {
  constructor(
    readonly clientOrderId: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, 422, options);
  }
}

/**
 * The broker could not be reached or failed (5xx, 429, a timeout, a dropped connection) after the
 * retries allowed. For a submission the outcome is UNKNOWN: resolve it by client order id.
 */
export class BrokerUnavailableError extends BrokerError {}

/** A broker answer that breaks its schema; the message names the field. */
export class BrokerResponseError extends BrokerError {}

/**
 * A crypto symbol (`BTC-USD`, `ETH/USD`, `BTCUSD`) where the equity bot works: its config's
 * watchlist or an order. The equity bot never trades crypto; the crypto bot has its own config.
 */
export class CryptoSymbolRefusedError extends ConfigError {
  constructor(
    readonly symbol: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * An equity ticker (`SPY`) where the crypto bot works: its config's watchlist or an order. The
 * crypto bot trades only crypto products (`BTC-USD`).
 */
export class EquitySymbolRefusedError extends ConfigError {
  constructor(
    readonly symbol: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * An order whose quantity the product cannot take: under its minimum size or notional, or zero once
 * rounded down to its base increment. Refused before anything is sent; `refusal` names the rule.
 */
export class OrderSizeRefusedError extends BrokerRejectedError {
  constructor(
    readonly productId: string,
    readonly refusal: 'below-min-size' | 'below-min-notional' | 'zero-after-rounding',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, undefined, undefined, options);
  }
}

/**
 * The exchange's limits of a product (base increment, minimum size, quote minimum) differ from the
 * config's `products:`, which the backtest sized on: the live quantities would no longer be the
 * backtest's. The signal step stops before deciding; update the config (and re-validate).
 */
export class ProductLimitsMismatchError extends ConfigError {}

/** A sleeve (or strategy) names a strategy the registry does not know; the message lists the known ones. */
export class UnknownStrategyError extends ConfigError {}

/** Two sleeves share one id (ids go into state keys and order ids, so they must be unique). */
export class DuplicateSleeveIdError extends ConfigError {}

/** A sleeve with no symbol to trade, or with a symbol outside the watchlist. */
export class SleeveSymbolsError extends ConfigError {}

/** Allocation weights or bounds that cannot hold: outside [min, max], bounds that cannot sum to 1, or a zero sum. */
export class AllocationWeightError extends ConfigError {}

/** A sleeve parameter that its strategy's schema does not have or does not accept. */
export class StrategyParamError extends ConfigError {}

/**
 * The sleeves' ledger disagrees with the account's (a position or cash that is not the sum of the
 * sleeves', or a sleeve selling more than it holds): asserted at every close, never papered over.
 */
export class SleeveLedgerError extends QuantShiftError {}

/**
 * The dry run's virtual account cannot book an order, as Coinbase would refuse it: a buy its cash
 * cannot pay, a sell of more coins than it holds, an order type Coinbase does not take.
 */
export class VirtualOrderRefusedError extends BrokerRejectedError {}
