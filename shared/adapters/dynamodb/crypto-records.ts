/** zod schemas of the crypto bot's records ({@link CryptoStore}), checked on write and on read. */
import * as z from 'zod';
import type { DryRunAccount } from '../../core/live/dry-run-account.js';
import type { DryRunRecord, FundingRecord } from '../../core/ports/crypto-store.js';
import { dateSchema, idSchema, isoTimeSchema } from './records.js';

const finite = z.number().refine((x) => Number.isFinite(x), 'not a finite number');
const positive = finite.refine((x) => x > 0, 'not positive');
const nonNegative = finite.refine((x) => x >= 0, 'negative');

export const fundingRecordSchema = z.object({
  productId: idSchema,
  underlying: z.string().min(1, 'empty'),
  /** A fraction per funding period; either sign (positive: longs pay shorts), never beyond ±100%. */
  rate: finite.refine((x) => Math.abs(x) <= 1, 'beyond ±1 (100%) a period'),
  time: isoTimeSchema,
  recordedAt: isoTimeSchema,
}) satisfies z.ZodType<FundingRecord>;

export const dryRunRecordSchema = z
  .object({
    date: dateSchema,
    clientOrderId: idSchema,
    symbol: z.string().min(1, 'empty'),
    purpose: z.enum(['entry', 'exit', 'stop']),
    side: z.enum(['buy', 'sell']),
    qty: positive,
    type: z.enum(['market', 'limit', 'stop', 'stop_limit', 'trailing_stop']),
    stopPrice: positive.optional(),
    limitPrice: positive.optional(),
    referencePrice: positive,
    bid: positive,
    ask: positive,
    quoteTime: isoTimeSchema,
    wouldPay: positive,
    fill: z
      .object({ qty: positive, price: positive, feeCents: z.number().int().min(0) })
      .strict()
      .optional(),
    spreadBps: nonNegative,
    decidedAt: isoTimeSchema,
  })
  .refine((r) => r.ask >= r.bid, {
    path: ['ask'],
    message: 'below the bid',
  }) satisfies z.ZodType<DryRunRecord>;

const cents = z.number().int('not whole cents');
const virtualOrderSchema = z
  .object({
    id: idSchema,
    clientOrderId: idSchema,
    symbol: z.string().min(1, 'empty'),
    side: z.enum(['buy', 'sell']),
    type: z.enum(['market', 'limit', 'stop', 'stop_limit', 'trailing_stop']),
    timeInForce: z.enum(['day', 'gtc', 'opg', 'cls', 'ioc', 'fok']),
    qty: positive,
    filledQty: nonNegative,
    filledAvgPrice: positive.nullable(),
    limitPrice: positive.nullable(),
    stopPrice: positive.nullable(),
    status: z.enum(['accepted', 'filled', 'canceled']),
    submittedAt: isoTimeSchema,
    filledAt: isoTimeSchema.nullable(),
  })
  .strict();

/** The dry run's virtual account (`DRYRUN/ACCOUNT`): cash in cents, coins, orders, recent fills. */
export const dryRunAccountSchema = z
  .object({
    schemaVersion: z.literal(1),
    startingCashCents: cents.min(0),
    cashCents: cents.min(0, 'negative cash (spot: no margin)'),
    positions: z.array(
      z.object({ symbol: z.string().min(1, 'empty'), qty: positive, costCents: cents.min(0) }).strict(),
    ),
    orders: z.array(virtualOrderSchema),
    fills: z.array(
      z
        .object({
          id: idSchema,
          orderId: idSchema,
          symbol: z.string().min(1, 'empty'),
          side: z.enum(['buy', 'sell']),
          qty: positive,
          price: positive,
          time: isoTimeSchema,
          feeCents: cents.min(0),
        })
        .strict(),
    ),
    dayStart: z.object({ date: dateSchema, equity: nonNegative }).strict().nullable(),
  })
  .strict() satisfies z.ZodType<DryRunAccount>;

export const dryRunAccountItemSchema = z.object({
  version: z.number().int().min(1),
  account: dryRunAccountSchema,
});

type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false;
type Check<T extends true> = T;
export type CryptoSchemasMatchThePort = Check<
  | SameKeys<z.output<typeof fundingRecordSchema>, FundingRecord>
  | SameKeys<z.output<typeof dryRunRecordSchema>, DryRunRecord>
>;
