/**
 * zod schemas of the Advanced Trade REST answers the adapter reads. Coinbase writes decimals as
 * strings: each is parsed to a finite number and checked for its sign (a NaN, an infinity, an
 * exponent-free garbage string or a negative size fails, naming the field). Unknown fields pass.
 */
import * as z from 'zod';

const DECIMAL = /^-?\d+(\.\d+)?$/;

/** A decimal string (or number) → a finite number. */
const decimal = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const n = typeof value === 'number' ? value : DECIMAL.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isFinite(n)) {
    ctx.addIssue({ code: 'custom', message: `expected a finite decimal, got ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  return n;
});
export const anyDecimal = decimal;
export const nonNegative = decimal.refine((n) => n >= 0, 'must be >= 0');
export const positive = decimal.refine((n) => n > 0, 'must be > 0');
/** A decimal that may be absent or empty (Coinbase sends "" for unset prices). */
const optionalNonNegative = z
  .union([z.literal(''), z.null(), nonNegative])
  .optional()
  .transform((v) => (v === '' || v === null || v === undefined ? null : v));

const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'expected an ISO 8601 time');

/**
 * `GET /time`: the exchange's clock. `epochMillis` (a string of digits) is read; `iso` must name
 * the same instant to the second (the exchange may send it in whole seconds, or with more digits
 * than milliseconds), so a garbled answer is refused rather than trusted as the time.
 */
export const serverTimeSchema = z
  .object({ iso: isoTime, epochMillis: z.string().regex(/^\d{1,15}$/, 'expected epoch milliseconds') })
  .refine((t) => Math.abs(Date.parse(t.iso) - Number(t.epochMillis)) < 1000, {
    message: 'iso and epochMillis name different instants',
    path: ['iso'],
  })
  .transform((t) => new Date(Number(t.epochMillis)).toISOString());

export const money = z.object({ value: nonNegative, currency: z.string().min(1) });

export const accountSchema = z.object({
  uuid: z.string().min(1),
  currency: z.string().min(1),
  available_balance: money,
  hold: money,
  active: z.boolean(),
  ready: z.boolean().optional(),
});
export const accountsPageSchema = z.object({
  accounts: z.array(accountSchema),
  has_next: z.boolean(),
  cursor: z.string(),
});

export const productSchema = z.object({
  product_id: z.string().min(1),
  price: optionalNonNegative,
  base_increment: positive,
  quote_increment: positive,
  base_min_size: nonNegative,
  base_max_size: positive.optional(),
  quote_min_size: nonNegative.optional(),
  status: z.string(),
  trading_disabled: z.boolean(),
  product_type: z.enum(['SPOT', 'FUTURE', 'UNKNOWN_PRODUCT_TYPE']).optional(),
  future_product_details: z
    .object({
      contract_root_unit: z.string().optional(),
      contract_expiry_type: z.string().optional(),
      funding_rate: z.union([z.literal(''), anyDecimal]).optional(),
      funding_time: z.union([z.literal(''), isoTime]).optional(),
      perpetual_details: z
        .object({
          funding_rate: z.union([z.literal(''), anyDecimal]).optional(),
          funding_time: z.union([z.literal(''), isoTime]).optional(),
        })
        .optional(),
    })
    .optional()
    .nullable(),
});
export const productsSchema = z.object({ products: z.array(productSchema) });

export const candleSchema = z
  .object({
    start: z.union([z.string(), z.number()]).transform((v, ctx) => {
      const n = Number(v);
      if (!(Number.isInteger(n) && n >= 0)) {
        ctx.addIssue({ code: 'custom', message: `expected unix seconds, got ${JSON.stringify(v)}` });
        return z.NEVER;
      }
      return n;
    }),
    low: positive,
    high: positive,
    open: positive,
    close: positive,
    volume: nonNegative,
  })
  .superRefine((c, ctx) => {
    if (c.high < c.low)
      ctx.addIssue({ code: 'custom', path: ['high'], message: `high ${c.high} < low ${c.low}` });
    for (const field of ['open', 'close'] as const) {
      if (c[field] < c.low || c[field] > c.high) {
        ctx.addIssue({ code: 'custom', path: [field], message: `${field} ${c[field]} outside [low, high]` });
      }
    }
  });
export const candlesSchema = z.object({ candles: z.array(candleSchema) });

const bookLevel = z.object({ price: positive, size: nonNegative });
/** `GET /best_bid_ask`: the top of each product's book (an empty side is refused by the adapter). */
export const bestBidAskSchema = z.object({
  pricebooks: z.array(
    z.object({
      product_id: z.string().min(1),
      bids: z.array(bookLevel),
      asks: z.array(bookLevel),
      time: z.iso.datetime({ offset: true }),
    }),
  ),
});

export const orderStatusSchema = z.enum([
  'PENDING',
  'OPEN',
  'FILLED',
  'CANCELLED',
  'EXPIRED',
  'FAILED',
  'UNKNOWN_ORDER_STATUS',
  'QUEUED',
  'CANCEL_QUEUED',
]);

const baseSize = { base_size: positive };
export const orderConfigurationSchema = z.object({
  market_market_ioc: z.object(baseSize).optional(),
  limit_limit_gtc: z
    .object({ ...baseSize, limit_price: positive, post_only: z.boolean().optional() })
    .optional(),
  stop_limit_stop_limit_gtc: z
    .object({
      ...baseSize,
      limit_price: positive,
      stop_price: positive,
      stop_direction: z.enum(['STOP_DIRECTION_STOP_UP', 'STOP_DIRECTION_STOP_DOWN']),
    })
    .optional(),
  trigger_bracket_gtc: z
    .object({ ...baseSize, limit_price: positive, stop_trigger_price: positive })
    .optional(),
});

export const orderSchema = z.object({
  order_id: z.string().min(1),
  client_order_id: z.string(),
  product_id: z.string().min(1),
  side: z.enum(['BUY', 'SELL']),
  status: orderStatusSchema,
  order_configuration: orderConfigurationSchema,
  filled_size: nonNegative,
  average_filled_price: nonNegative,
  total_fees: nonNegative.optional(),
  created_time: isoTime,
  last_fill_time: z.union([isoTime, z.null()]).optional(),
});
export const orderEnvelopeSchema = z.object({ order: orderSchema });
export const ordersPageSchema = z.object({
  orders: z.array(orderSchema),
  has_next: z.boolean(),
  cursor: z.string(),
});

export const createOrderSchema = z.object({
  success: z.boolean(),
  success_response: z
    .object({
      order_id: z.string().min(1),
      product_id: z.string(),
      side: z.string(),
      client_order_id: z.string(),
    })
    .optional(),
  error_response: z
    .object({
      error: z.string().optional(),
      message: z.string().optional(),
      error_details: z.string().optional(),
      preview_failure_reason: z.string().optional(),
    })
    .optional(),
});

export const fillSchema = z.object({
  entry_id: z.string().min(1),
  trade_id: z.string().min(1),
  order_id: z.string().min(1),
  trade_time: isoTime,
  price: positive,
  size: positive,
  commission: nonNegative,
  product_id: z.string().min(1),
  side: z.enum(['BUY', 'SELL']),
  size_in_quote: z.boolean(),
  liquidity_indicator: z.string().optional(),
});
export const fillsPageSchema = z.object({ fills: z.array(fillSchema), cursor: z.string() });

export const cancelSchema = z.object({
  results: z.array(
    z.object({ success: z.boolean(), failure_reason: z.string().optional(), order_id: z.string() }),
  ),
});

export type WireOrder = z.infer<typeof orderSchema>;
export type WireProduct = z.infer<typeof productSchema>;
export type WireFill = z.infer<typeof fillSchema>;
