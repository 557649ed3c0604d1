import type { SessionRecord } from '../core/ports/state-store.js';
import { type LiveContext, sessionDate, sessionTimeToUtc } from './context.js';

/** A regular session closes at 16:00 New York; earlier is an early close (13:00 on the half days). */
const REGULAR_CLOSE = '16:00';

/**
 * market-open check: the broker's calendar says whether `scheduledTime`'s session date trades, and
 * when it opens and closes. The session record it writes gates every later step of the day: a
 * closed day ends the chain. The session date is the New York date for the equity bot and the UTC
 * date for the crypto bot (its 24/7 calendar: every day open, 00:00 to 24:00 UTC).
 */
export async function marketOpenCheck(ctx: LiveContext, scheduledTime: string): Promise<SessionRecord> {
  const day = sessionDate(ctx, scheduledTime);
  const calendar = await ctx.broker.getCalendar({ from: day, to: day });
  const today = calendar.find((d) => d.date === day);
  const session: SessionRecord =
    today === undefined
      ? { date: day, isOpen: false, openAt: null, closeAt: null, earlyClose: false, checkedAt: scheduledTime }
      : {
          date: day,
          isOpen: true,
          openAt: sessionTimeToUtc(ctx, day, today.open),
          closeAt: sessionTimeToUtc(ctx, day, today.close),
          earlyClose: ctx.calendar?.timeZone !== 'UTC' && today.close < REGULAR_CLOSE,
          checkedAt: scheduledTime,
        };
  await ctx.store.putSession(session);
  // The first trading day starts the fill ledger's watermark at its midnight: end-of-day reads the
  // broker's fills from the last reconciled point, so a day whose end-of-day fails is backfilled.
  if (session.isOpen && (await ctx.store.getFillWatermark()) === undefined) {
    await ctx.store.advanceFillWatermark(sessionTimeToUtc(ctx, day, '00:00'));
  }
  ctx.log.info(session.isOpen ? 'market open today' : 'market closed today', { ...session });
  return session;
}
