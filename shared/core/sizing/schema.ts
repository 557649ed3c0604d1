import * as z from 'zod';

const fraction = z.number().gt(0).max(1);

/** The `sizing:` block of a config (and of a sleeve that overrides it). */
export const sizingSchema = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('all-in') }).strict(),
  z.object({ mode: z.literal('fixed'), qty: z.number().positive() }).strict(),
  z.object({ mode: z.literal('fraction'), fraction }).strict(),
  z.object({ mode: z.literal('atr-risk'), risk: fraction.optional() }).strict(),
]);

export type SizingConfig = z.infer<typeof sizingSchema>;
