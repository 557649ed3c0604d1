import { parse as parseYaml, YAMLParseError } from 'yaml';
import * as z from 'zod';
import { ConfigError, CryptoSymbolRefusedError, EquitySymbolRefusedError } from '../errors.js';
import { hardLimitsSchema } from '../live/orders.js';
import { assetClassRefusal, isCryptoProduct, isEquityTicker } from '../market/asset-class.js';
import { allocationSchema, sleeveCorrelationSchema, sleeveSchema } from '../portfolio/config.js';
import { checkSleeves } from '../portfolio/sleeves.js';
import { parameterSpaceSchema } from '../research/grid.js';
import { METRIC_NAMES } from '../research/objective.js';
import { walkForwardSettingsSchema } from '../research/walk-forward.js';
import { riskRulesSchema } from '../risk/rules.js';
import type { ProductIncrements, ProductTable } from '../sizing/increments.js';
import { sizingSchema } from '../sizing/schema.js';
import { getStrategy } from '../strategies/index.js';
import { DIRECTIONS } from '../strategies/types.js';

export { sizingSchema };

/** A product's trading limits (`products:` of a crypto config). */
const productLimitsSchema = z
  .object({
    /** Smallest step of the base quantity (a power of ten: 0.00000001, 0.001, 1). */
    baseIncrement: z
      .number()
      .refine((x) => Number.isFinite(x) && x > 0 && x <= 1, 'must be a positive number up to 1')
      .refine((x) => {
        for (let d = 0; d <= 12; d++) if (Math.abs(x - 10 ** -d) < 1e-15 * 10 ** -d + 1e-20) return true;
        return false;
      }, 'must be a power of ten with at most 12 decimals (0.00000001, 0.001, 1)'),
    /** Smallest base quantity an order may have. */
    minSize: z.number().refine((x) => Number.isFinite(x) && x > 0, 'must be a positive finite number'),
    /** Smallest notional (quote currency) an order may have; absent: none. */
    quoteMinSize: z
      .number()
      .refine((x) => Number.isFinite(x) && x >= 0, 'must be a finite number >= 0')
      .optional(),
  })
  .strict();

/** A US equity ticker: `SPY`, `BRK.B`. Crypto pairs are refused: asset classes are kept apart. */
export const equitySymbol = z
  .string()
  .transform((s) => s.trim().toUpperCase())
  .superRefine((s, ctx) => checkSymbol('equity', s, ctx));

/** The `params.refusal` of a zod issue that {@link parseConfig} turns into its named error. */
type Refusal = 'crypto-symbol' | 'equity-symbol';

/** Adds the issue of a symbol the asset class does not trade (named refusal) or cannot read. */
function checkSymbol(
  assetClass: 'equity' | 'crypto',
  symbol: string,
  ctx: { addIssue: (issue: z.core.$ZodRawIssue) => void },
  path: (string | number)[] = [],
): void {
  const refusal = assetClassRefusal(assetClass, symbol);
  if (refusal !== null) {
    const params: { refusal: Refusal; symbol: string } = {
      refusal: assetClass === 'equity' ? 'crypto-symbol' : 'equity-symbol',
      symbol,
    };
    ctx.addIssue({ code: 'custom', path, message: refusal, params, input: symbol });
  } else if (assetClass === 'equity' && !isEquityTicker(symbol)) {
    ctx.addIssue({
      code: 'custom',
      path,
      message: 'not a US equity ticker (1-5 letters, e.g. SPY, BRK.B)',
      input: symbol,
    });
  } else if (assetClass === 'crypto' && !isCryptoProduct(symbol)) {
    ctx.addIssue({
      code: 'custom',
      path,
      message: 'not a crypto product id (BASE-QUOTE, e.g. BTC-USD)',
      input: symbol,
    });
  }
}

/** A calendar date `YYYY-MM-DD` that exists (2021-02-30 does not). */
export const isoDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date as YYYY-MM-DD')
  .refine((s) => {
    const t = Date.parse(`${s}T00:00:00Z`);
    return !Number.isNaN(t) && new Date(t).toISOString().slice(0, 10) === s;
  }, 'expected a date as YYYY-MM-DD that exists');
const money = z.number().min(0);

export const commissionSchema = z
  .object({
    perShare: money.default(0),
    perOrder: money.default(0),
    percent: z.number().min(0).max(0.1).default(0),
    minimum: money.default(0),
  })
  .strict();

/**
 * Exchange fees in basis points of the notional (Coinbase's maker/taker schedule). The backtest
 * fills market entries and stop exits, which take liquidity: they pay the taker fee.
 */
export const feesSchema = z
  .object({
    makerBps: z.number().min(0).max(500),
    takerBps: z.number().min(0).max(500),
  })
  .strict();

export const criteriaSchema = z
  .object({
    minSharpe: z.number().default(1.5),
    maxDrawdownPct: z.number().positive().max(100).default(15),
    minWinRatePct: z.number().min(0).max(100).default(50),
    minProfitFactor: z.number().min(0).default(1.5),
    minAnnualReturnPct: z.number().default(15),
    /** Walk-forward: share of symbols whose stitched out-of-sample return is positive (consistency). */
    minSymbolsPositivePct: z.number().min(0).max(100).default(75),
  })
  .strict();

/**
 * The go/no-go of paper-trading validation (`quantshift validate-paper`, docs/validation.md): what
 * paper trading must show before the live gate lets a sleeve's entries through.
 */
export const paperValidationCriteriaSchema = z
  .object({
    /** Paper sessions the validation needs. */
    minSessions: z.number().int().min(1).default(30),
    /** Paper Sharpe must be above this. */
    minSharpe: z.number().finite().default(1.0),
    /** Paper max drawdown must be below this, in percent. */
    maxDrawdownPct: z.number().positive().max(100).default(20),
    /** Critical execution failures allowed: rejected or unknown orders, lost fills, reconciliation mismatches. */
    maxCriticalFailures: z.number().int().min(0).default(0),
    /** Trades matched with the shadow backtest, in percent of every trade of either. */
    minTradesMatchedPct: z.number().min(0).max(100).default(95),
    /** Median market-on-open slippage may exceed the cost model's slippageBps by this many bps. */
    slippageToleranceBps: z.number().min(0).max(1000).default(5),
    /**
     * The daily report's rolling live-vs-backtest tracking: a breach emits the divergence metric
     * (the "strategy diverging from its backtest" alarm).
     */
    divergence: z
      .object({
        window: z.number().int().min(5).max(250).default(20),
        maxReturnGapPct: z.number().positive().default(2),
        minCorrelation: z.number().min(-1).max(1).default(0.8),
        maxSlippageDriftBps: z.number().min(0).default(5),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type PaperValidationCriteria = z.output<typeof paperValidationCriteriaSchema>;

export const configSchema = z
  .object({
    name: z.string().min(1),
    /** `equity` (US equities on Alpaca; `us_equity` is the same) or `crypto` (spot on Coinbase). */
    assetClass: z
      .enum(['equity', 'us_equity', 'crypto'])
      .transform((c): 'equity' | 'crypto' => (c === 'us_equity' ? 'equity' : c))
      .default('equity'),
    /** Equity tickers, or crypto product ids (`BTC-USD`) under `assetClass: crypto`. */
    watchlist: z.array(z.string().transform((s) => s.trim().toUpperCase())).min(1),
    data: z
      .object({ dir: z.string().min(1).default('data'), adjusted: z.boolean().default(false) })
      .strict()
      .default({ dir: 'data', adjusted: false }),
    backtest: z
      .object({
        initialCash: z.number().positive().default(100_000),
        from: isoDate.optional(),
        to: isoDate.optional(),
        endOfData: z.enum(['hold', 'close']).default('close'),
        fractional: z.boolean().default(false),
        riskFreeRate: z.number().min(0).max(0.25).default(0),
      })
      .strict(),
    /** One strategy on the whole watchlist (one sleeve); or `sleeves:` instead. */
    strategy: z
      .object({
        name: z.string().min(1),
        /** A run option, not a strategy parameter (`params.direction` is refused with this hint). */
        direction: z.enum(DIRECTIONS).default('long-only'),
        params: z.record(z.string(), z.unknown()).default({}),
      })
      .strict()
      .optional(),
    /** Several strategies on one account, each with its symbols and its share of the capital. */
    sleeves: z.array(sleeveSchema).min(1).optional(),
    allocation: allocationSchema.optional(),
    /** Rolling correlation monitoring of the sleeves' daily returns. */
    sleeveCorrelation: sleeveCorrelationSchema.optional(),
    sizing: sizingSchema,
    costs: z
      .object({
        commission: commissionSchema.default({ perShare: 0, perOrder: 0, percent: 0, minimum: 0 }),
        /** Maker/taker fees in bps (crypto); the taker fee becomes the commission's `percent`. */
        fees: feesSchema.optional(),
        slippageBps: z.number().min(0).max(1000).default(0),
      })
      .strict()
      .superRefine((costs, ctx) => {
        const c = costs.commission;
        if (costs.fees !== undefined && c.perShare + c.perOrder + c.percent + c.minimum > 0) {
          ctx.addIssue({
            code: 'custom',
            path: ['fees'],
            message: 'give either fees (maker/taker bps) or a commission, not both',
          });
        }
      })
      .transform((costs) =>
        costs.fees === undefined
          ? costs
          : {
              ...costs,
              commission: { perShare: 0, perOrder: 0, percent: costs.fees.takerBps / 10_000, minimum: 0 },
            },
      ),
    risk: riskRulesSchema,
    criteria: criteriaSchema,
    validation: paperValidationCriteriaSchema.default(paperValidationCriteriaSchema.parse({})),
    optimize: z
      .object({
        objective: z.enum(METRIC_NAMES).default('sharpe'),
        /** Metric → minimum (maximum for drawdown and volatility) a result must meet to be chosen. */
        minimums: z.partialRecord(z.enum(METRIC_NAMES), z.number()).default({ trades: 10 }),
        /** The grid of a single-strategy config (a sleeves config has one per sleeve). */
        space: parameterSpaceSchema.optional(),
      })
      .strict()
      .optional(),
    /** Pre-trade hard limits of the live functions. */
    live: z
      .object({
        limits: hardLimitsSchema.default(hardLimitsSchema.parse({})),
        /** Calendar days of daily bars the signals are computed over. */
        lookbackDays: z.number().int().min(30).max(5000).default(730),
        /** Or a fixed first day of history (recursive indicators then match a backtest from that day exactly). */
        historyFrom: isoDate.optional(),
        /**
         * Crypto bot only: how far beyond a protective `stop_limit` order's stop its limit lies, a
         * fraction of the stop (0.02: a sell stop at $100 has its limit at $98). Coinbase has no
         * stop-market order; absent: 0.02 (`core/live/order-style.ts`).
         */
        stopLimitDistance: z
          .number()
          .refine(
            (x) => Number.isFinite(x) && x > 0 && x <= 0.2,
            'must be in (0, 0.2] (a fraction of the stop)',
          )
          .optional(),
        /**
         * The kill-switch function (invoked by the loss and drawdown alarms): `flatten` also sells
         * every watchlist position at market after cancelling its resting stops. Absent: false.
         */
        killSwitch: z
          .object({ flatten: z.boolean().default(false) })
          .strict()
          .optional(),
      })
      .strict()
      .default({ limits: hardLimitsSchema.parse({}), lookbackDays: 730 }),
    /**
     * Crypto bot only: funding-rate monitoring of the perpetual-style futures (informational: the
     * bot trades spot). An alert when |rate| exceeds `threshold` (a fraction per hourly funding
     * period) or when the rate changes sign.
     */
    funding: z
      .object({
        threshold: z
          .number()
          .refine((x) => Number.isFinite(x), 'not a finite number')
          .refine((x) => x > 0 && x <= 0.01, 'must be in (0, 0.01] (a fraction per funding period)')
          .default(0.0001),
        underlyings: z
          .array(
            z
              .string()
              .trim()
              .toUpperCase()
              .regex(/^[A-Z0-9]{2,10}$/, 'not an underlying (BTC, ETH, ...)'),
          )
          .min(1)
          .default(['BTC', 'ETH']),
      })
      .strict()
      .optional(),
    /**
     * Crypto bot only: each watchlist product's trading limits, as the exchange publishes them
     * (Coinbase's `base_increment`, `base_min_size`, `quote_min_size`). The core sizes every entry on
     * them (rounded down to `baseIncrement`, refused under `minSize` or `quoteMinSize`), in the
     * backtest and the live signal step alike; the live step checks them against the exchange's.
     */
    products: z.record(z.string(), productLimitsSchema).optional(),
    walkForward: walkForwardSettingsSchema.default({
      mode: 'rolling',
      unit: 'bars',
      inSample: 504,
      outOfSample: 126,
    }),
  })
  .strict()
  .superRefine(
    (config, ctx) => {
      // Runs even when other keys failed (`when`), so a refused symbol is always named; the
      // config may then be partly invalid, hence the guards.
      const assetClass = config.assetClass === 'crypto' ? 'crypto' : 'equity';
      if (!Array.isArray(config.watchlist)) return;
      config.watchlist.forEach((symbol, i) => {
        if (typeof symbol === 'string') checkSymbol(assetClass, symbol, ctx, ['watchlist', i]);
      });
    },
    { when: () => true },
  )
  .refine(
    (config) => {
      const given = (key: string) =>
        typeof config === 'object' &&
        config !== null &&
        (config as Record<string, unknown>)[key] !== undefined;
      return given('strategy') !== given('sleeves');
    },
    {
      path: ['strategy'],
      message: 'give either one strategy: block or a sleeves: list, not both and not neither',
      // Reported with the other issues, even when the rest of the config fails too.
      when: () => true,
    },
  )
  .superRefine((config, ctx) => {
    const duplicates = config.watchlist.filter((s, i) => config.watchlist.indexOf(s) !== i);
    if (duplicates.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['watchlist'],
        message: `duplicate symbols: ${duplicates.join(', ')}`,
      });
    }
    if (config.sleeves === undefined && (config.allocation ?? config.sleeveCorrelation) !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [config.allocation === undefined ? 'sleeveCorrelation' : 'allocation'],
        message: 'only a config with sleeves: has an allocation or a sleeve correlation monitor',
      });
    }
    if (config.live.stopLimitDistance !== undefined && config.assetClass !== 'crypto') {
      ctx.addIssue({
        code: 'custom',
        path: ['live', 'stopLimitDistance'],
        message:
          "stop-limit protective stops are the crypto bot's (assetClass: crypto); the equity bot sends stop orders",
      });
    }
    if (config.funding !== undefined && config.assetClass !== 'crypto') {
      ctx.addIssue({
        code: 'custom',
        path: ['funding'],
        message: 'funding-rate monitoring is for the crypto bot (assetClass: crypto)',
      });
    }
    if (config.products !== undefined && config.assetClass !== 'crypto') {
      ctx.addIssue({
        code: 'custom',
        path: ['products'],
        message: "products' increments are the crypto bot's (assetClass: crypto)",
      });
    }
    if (config.assetClass === 'crypto') {
      for (const symbol of config.watchlist) {
        if (config.products?.[symbol] === undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['products', symbol],
            message: `missing: every watchlist product needs its baseIncrement and minSize (${symbol})`,
          });
        }
      }
      for (const symbol of Object.keys(config.products ?? {})) {
        if (!config.watchlist.includes(symbol)) {
          ctx.addIssue({ code: 'custom', path: ['products', symbol], message: 'not in the watchlist' });
        }
      }
    }
    if (config.backtest.from && config.backtest.to && config.backtest.from > config.backtest.to) {
      ctx.addIssue({ code: 'custom', path: ['backtest', 'from'], message: 'from is after to' });
    }
  });

/** The validated strategy configuration (`config/equity-strategy.yaml`). */
export type StrategyConfig = z.infer<typeof configSchema>;

/** Formats zod issues as `key.path: message` items, for one error line. */
export function formatIssues(error: z.ZodError, prefix: readonly (string | number)[] = []): string {
  return error.issues
    .map((issue) => {
      const path = [...prefix, ...issue.path].map(String).join('.');
      return `${path || '(root)'}: ${issue.message}`;
    })
    .join('; ');
}

/**
 * Parses and validates a YAML config. Errors are `ConfigError`s naming the file and each bad key.
 * The strategy's own parameters are validated with its schema (`strategy.params.<key>`).
 */
export function parseConfig(text: string, file: string): StrategyConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    const where = error instanceof YAMLParseError && error.linePos ? `:${error.linePos[0].line}` : '';
    throw new ConfigError(`${file}${where}: not valid YAML: ${(error as Error).message.split('\n')[0]}`, {
      cause: error,
    });
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const message = `${file}: ${formatIssues(parsed.error)}`;
    const refused = parsed.error.issues.find(
      (issue) => issue.code === 'custom' && (issue.params as { refusal?: Refusal } | undefined)?.refusal,
    );
    const params =
      refused?.code === 'custom' ? (refused.params as { refusal: Refusal; symbol: string }) : null;
    if (params?.refusal === 'crypto-symbol')
      throw new CryptoSymbolRefusedError(params.symbol, message, { cause: parsed.error });
    if (params?.refusal === 'equity-symbol')
      throw new EquitySymbolRefusedError(params.symbol, message, { cause: parsed.error });
    throw new ConfigError(message, { cause: parsed.error });
  }
  const config = parsed.data;
  if (config.sleeves !== undefined) {
    checkSleeves(config.sleeves, config.watchlist, file);
    return config;
  }
  const single = config.strategy as NonNullable<StrategyConfig['strategy']>;
  let strategy: ReturnType<typeof getStrategy>;
  try {
    strategy = getStrategy(single.name);
  } catch (error) {
    throw new ConfigError(`${file}: strategy.name: ${(error as Error).message}`, { cause: error });
  }
  if ('direction' in single.params) {
    throw new ConfigError(
      `${file}: strategy.params.direction: direction is an option of the run, not a strategy parameter; move it to strategy.direction`,
    );
  }
  if (!strategy.directions.includes(single.direction)) {
    throw new ConfigError(
      `${file}: strategy.direction: ${strategy.name} supports ${strategy.directions.join(', ')}`,
    );
  }
  const params = strategy.params.safeParse(single.params);
  if (!params.success) {
    throw new ConfigError(`${file}: ${formatIssues(params.error, ['strategy', 'params'])}`, {
      cause: params.error,
    });
  }
  return config;
}

/**
 * The config's products as the sizing reads them (`ProductIncrements` by product id); absent for a
 * config without `products:` (equities: whole or 1e-6 fractional shares).
 */
export function configProducts(config: Pick<StrategyConfig, 'products'>): ProductTable | undefined {
  if (config.products === undefined) return undefined;
  const table: Record<string, ProductIncrements> = {};
  for (const [productId, p] of Object.entries(config.products)) {
    table[productId] = {
      productId,
      baseIncrement: p.baseIncrement,
      baseMinSize: p.minSize,
      ...(p.quoteMinSize === undefined ? {} : { quoteMinSize: p.quoteMinSize }),
    };
  }
  return table;
}

/**
 * The one strategy of a single-strategy config. A sleeves config has several: the commands that run
 * one strategy (live signals for now) refuse it with this error.
 */
export function singleStrategy(config: StrategyConfig): NonNullable<StrategyConfig['strategy']> {
  if (config.strategy === undefined) {
    throw new ConfigError(
      `${config.name}: this command runs one strategy: block; the config has sleeves (${(config.sleeves ?? []).map((s) => s.id).join(', ')})`,
    );
  }
  return config.strategy;
}

/**
 * The sleeve ids the live functions keep state under: a sleeves config's ids, or for a
 * single-strategy config one sleeve named after the config (so the state it wrote before sleeves
 * existed, keyed by the config's name, is that sleeve's).
 */
export function liveSleeveIds(config: StrategyConfig): readonly string[] {
  return config.sleeves === undefined ? [config.name] : config.sleeves.map((s) => s.id);
}

/** The strategy parameters a config runs with (its direction is a run option: `strategy.direction`). */
export function strategyParams(config: StrategyConfig): Record<string, unknown> {
  return { ...singleStrategy(config).params };
}
