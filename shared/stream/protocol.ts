/**
 * Alpaca's market-data stream, protocol v2 (JSON), as the consumer and the local fake server speak
 * it. Every frame is a JSON array of messages; each message is validated here with zod, so a field
 * that is missing, not finite or wrongly signed is refused with its index and name.
 *
 * Server messages: `success` (`connected`, `authenticated`), `error` (code and message), `subscription`
 * (the lists now subscribed), trade `t`, quote `q`, minute bar `b`, updated bar `u`, daily bar `d`,
 * trading status `s`. Client actions: `auth`, `subscribe`, `unsubscribe`.
 */
import * as z from 'zod';
import { QuantShiftError } from '../core/errors.js';

/** A frame or a message that does not follow the protocol; names the message index and field. */
export class StreamProtocolError extends QuantShiftError {}

const symbol = z.string().regex(/^[A-Z0-9][A-Z0-9./-]*$/, 'not a ticker');
const time = z.iso.datetime({ offset: true });
const price = z.number().positive();
const size = z.number().nonnegative();

export const tradeSchema = z.object({
  T: z.literal('t'),
  S: symbol,
  i: z.number().int().nonnegative(),
  x: z.string(),
  p: price,
  s: size,
  c: z.array(z.string()).optional(),
  t: time,
  z: z.string(),
});

export const quoteSchema = z
  .object({
    T: z.literal('q'),
    S: symbol,
    bx: z.string(),
    bp: z.number().nonnegative(),
    bs: size,
    ax: z.string(),
    ap: z.number().nonnegative(),
    as: size,
    c: z.array(z.string()).optional(),
    t: time,
    z: z.string(),
  })
  .refine((q) => q.bp > 0 || q.ap > 0, { message: 'a quote with neither a bid nor an ask', path: ['bp'] });

const barFields = {
  S: symbol,
  o: price,
  h: price,
  l: price,
  c: price,
  v: size,
  t: time,
  n: z.number().int().nonnegative().optional(),
  vw: z.number().nonnegative().optional(),
};
const barRange = (bar: { o: number; h: number; l: number; c: number }) =>
  bar.l <= bar.h && bar.o >= bar.l && bar.o <= bar.h && bar.c >= bar.l && bar.c <= bar.h;

export const barSchema = z
  .object({ T: z.enum(['b', 'u', 'd']), ...barFields })
  .refine(barRange, { message: 'open or close outside [low, high]', path: ['h'] });

export const statusSchema = z.object({
  T: z.literal('s'),
  S: symbol,
  sc: z.string(),
  sm: z.string().optional(),
  rc: z.string().optional(),
  rm: z.string().optional(),
  t: time,
  z: z.string().optional(),
});

export const successSchema = z.object({ T: z.literal('success'), msg: z.string() });
export const errorSchema = z.object({ T: z.literal('error'), code: z.number().int(), msg: z.string() });
export const subscriptionSchema = z.object({
  T: z.literal('subscription'),
  trades: z.array(z.string()).default([]),
  quotes: z.array(z.string()).default([]),
  bars: z.array(z.string()).default([]),
  updatedBars: z.array(z.string()).optional(),
  dailyBars: z.array(z.string()).optional(),
  statuses: z.array(z.string()).optional(),
});

const SCHEMAS = {
  t: tradeSchema,
  q: quoteSchema,
  b: barSchema,
  u: barSchema,
  d: barSchema,
  s: statusSchema,
  success: successSchema,
  error: errorSchema,
  subscription: subscriptionSchema,
} as const;

export type StreamTrade = z.infer<typeof tradeSchema>;
export type StreamQuote = z.infer<typeof quoteSchema>;
export type StreamBar = z.infer<typeof barSchema>;
export type StreamStatus = z.infer<typeof statusSchema>;
export type StreamMessage =
  | StreamTrade
  | StreamQuote
  | StreamBar
  | StreamStatus
  | z.infer<typeof successSchema>
  | z.infer<typeof errorSchema>
  | z.infer<typeof subscriptionSchema>;

/** The error codes of protocol v2 that the consumer acts on. */
export const STREAM_ERRORS = {
  authFailed: 402,
  authTimeout: 404,
  notAuthenticated: 401,
  alreadyAuthenticated: 403,
  symbolLimit: 405,
  connectionLimit: 406,
  slowClient: 407,
  insufficientSubscription: 409,
} as const;

/**
 * Parses one frame: a JSON array of messages, each validated by its `T`. Unknown message types are
 * refused too (a protocol change must be seen, not skipped).
 */
export function parseFrame(text: string): StreamMessage[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new StreamProtocolError(`stream frame is not JSON: ${text.slice(0, 80)}`, { cause: error });
  }
  if (!Array.isArray(raw)) throw new StreamProtocolError('stream frame is not a JSON array');
  const out: StreamMessage[] = [];
  for (const [index, item] of raw.entries()) {
    const type = (item as { T?: unknown } | null)?.T;
    const schema = typeof type === 'string' ? SCHEMAS[type as keyof typeof SCHEMAS] : undefined;
    if (schema === undefined) {
      throw new StreamProtocolError(`stream message ${index}: unknown type T=${JSON.stringify(type)}`);
    }
    const parsed = schema.safeParse(item);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const sym = typeof (item as { S?: unknown }).S === 'string' ? ` (${(item as { S: string }).S})` : '';
      throw new StreamProtocolError(
        `stream message ${index} T=${type}${sym}: field "${issue?.path.join('.') ?? ''}": ${issue?.message ?? 'invalid'}`,
        { cause: parsed.error },
      );
    }
    out.push(parsed.data as StreamMessage);
  }
  return out;
}

/** What the client sends. */
export const clientActionSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('auth'), key: z.string().min(1), secret: z.string().min(1) }),
  z.object({
    action: z.enum(['subscribe', 'unsubscribe']),
    trades: z.array(z.string()).optional(),
    quotes: z.array(z.string()).optional(),
    bars: z.array(z.string()).optional(),
    updatedBars: z.array(z.string()).optional(),
    dailyBars: z.array(z.string()).optional(),
    statuses: z.array(z.string()).optional(),
  }),
]);

export type ClientAction = z.infer<typeof clientActionSchema>;
