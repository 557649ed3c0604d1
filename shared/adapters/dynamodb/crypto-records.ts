/** zod schemas of the crypto bot's records ({@link CryptoStore}), checked on write and on read. */
import * as z from 'zod';
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
    spreadBps: nonNegative,
    decidedAt: isoTimeSchema,
  })
  .refine((r) => r.ask >= r.bid, {
    path: ['ask'],
    message: 'below the bid',
  }) satisfies z.ZodType<DryRunRecord>;

type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false;
type Check<T extends true> = T;
export type CryptoSchemasMatchThePort = Check<
  | SameKeys<z.output<typeof fundingRecordSchema>, FundingRecord>
  | SameKeys<z.output<typeof dryRunRecordSchema>, DryRunRecord>
>;
