import * as z from 'zod';
import { parameterSpaceSchema } from '../research/grid.js';
import { sizingSchema } from '../sizing/schema.js';

/** A sleeve id: lower-case letters, digits and dashes; it goes into state keys and order ids. */
export const sleeveIdSchema = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,23}$/, 'expected a sleeve id: a lower-case letter, then letters, digits or -');

const weight = z.number().min(0).max(1);

/** Per-trade risk settings a sleeve may override; the account-wide ones (heat, breakers) stay shared. */
export const sleeveRiskSchema = z
  .object({
    riskPerTrade: z.number().gt(0).max(1).optional(),
    maxPositionFraction: z.number().gt(0).max(1).optional(),
    kellyFraction: z.number().gt(0).max(1).optional(),
  })
  .strict();

/** One sleeve: a strategy on its symbols with its share of the account's capital. */
export const sleeveSchema = z
  .object({
    id: sleeveIdSchema,
    strategy: z.string().min(1),
    direction: z.enum(['long-only', 'long-short']).default('long-only'),
    params: z.record(z.string(), z.unknown()).default({}),
    symbols: z.array(z.string()).default([]),
    /** Target weight for `fixed` allocation (the others use it as the starting weight). */
    weight: weight.optional(),
    minWeight: weight.default(0),
    maxWeight: weight.default(1),
    /** Sizing of this sleeve's entries; absent: the account's `sizing`. */
    sizing: sizingSchema.optional(),
    risk: sleeveRiskSchema.optional(),
    /** The grid `optimize` and `walk-forward` search for this sleeve. */
    optimize: z.object({ space: parameterSpaceSchema }).strict().optional(),
  })
  .strict();

export type SleeveConfig = z.infer<typeof sleeveSchema>;

/** How capital is split between the sleeves and when it is moved. */
export const allocationSchema = z
  .object({
    method: z.enum(['fixed', 'inverse-volatility', 'risk-parity']).default('fixed'),
    /** Sessions of sleeve daily returns the volatility and covariance estimates read. */
    lookback: z.number().int().min(5).max(1000).default(63),
    /** Scheduled rebalance: the first close of each month, each quarter, or never. */
    rebalance: z.enum(['monthly', 'quarterly', 'never']).default('monthly'),
    /** Also rebalance when a sleeve's share of equity drifts this far from its target weight. */
    driftThreshold: z.number().gt(0).max(1).optional(),
  })
  .strict();

export type AllocationSettings = z.infer<typeof allocationSchema>;

/** Rolling correlation monitoring of the sleeves' daily returns. */
export const sleeveCorrelationSchema = z
  .object({
    window: z.number().int().min(5).max(1000).default(60),
    threshold: z.number().gt(0).max(1).default(0.8),
    /** While a pair is above the threshold, the weaker sleeve's weight is multiplied by this. */
    cut: z.number().gt(0).lt(1).optional(),
  })
  .strict();

export type SleeveCorrelationSettings = z.infer<typeof sleeveCorrelationSchema>;

export const defaultAllocation = (): AllocationSettings => allocationSchema.parse({});
export const defaultSleeveCorrelation = (): SleeveCorrelationSettings => sleeveCorrelationSchema.parse({});
