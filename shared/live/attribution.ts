/**
 * The P&L attribution of the daily and weekly reports (docs/validation.md, "Attribution"): the
 * ledger's round trips closed in the period and its fills of the period, costed against the
 * sessions' official opens, through the pure `attributePnl`.
 */
import type { ClosedTradeRecord } from '../core/ports/state-store.js';
import {
  attributePnl,
  type CostedFill,
  fillCosts,
  type PnlAttribution,
} from '../core/validation/attribution.js';
import type { SessionPrices } from '../core/validation/paper.js';
import type { LiveContext } from './context.js';
import { seriesPrices } from './paper-validation.js';

/**
 * The stage's fills of the sessions, as the attribution costs them. A sleeves config: each
 * sleeve's legs (the net fills split back at the fill price, or crossed at the open) and the fills
 * of its own orders (stops, exits); a single-strategy config: the fills of its orders. A fill of no
 * order of the stage (a manual one) is no sleeve's.
 */
export async function costedFills(ctx: LiveContext, dates: readonly string[]): Promise<CostedFill[]> {
  const { config } = ctx;
  const out: CostedFill[] = [];
  for (const date of dates) {
    const [intents, fills] = await Promise.all([ctx.store.listIntents(date), ctx.store.listFills(date)]);
    const byId = new Map(intents.map((i) => [i.clientOrderId, i]));
    for (const i of intents) {
      if (i.leg !== true || !(i.filledQty > 0) || i.avgFillPrice === undefined) continue;
      out.push({
        sleeve: i.sleeve ?? config.name,
        symbol: i.symbol,
        side: i.side,
        qty: i.filledQty,
        price: i.avgFillPrice,
        date,
        marketOnOpen: i.timeInForce === 'opg' && i.type === 'market',
        opens: i.purpose === 'entry',
      });
    }
    for (const f of fills) {
      if (f.clientOrderId === null) continue;
      const intent = byId.get(f.clientOrderId);
      // A net order's fills are its legs' (above).
      if (intent?.legIds !== undefined) continue;
      out.push({
        sleeve: intent?.sleeve ?? config.name,
        symbol: f.symbol,
        side: f.side,
        qty: f.qty,
        price: f.price,
        date: f.date,
        marketOnOpen: intent?.timeInForce === 'opg' && intent.type === 'market',
        // An earlier day's order of the stage (a resting stop) only ever closes.
        opens: intent?.purpose === 'entry',
      });
    }
  }
  return out;
}

/**
 * The attribution of the sessions `dates`: the closed trades given (a sleeves config's `strategy` is
 * the sleeve) and the sessions' fills, costed against the raw daily bars' opens; null (logged) when
 * the ledger cannot be read, so the report goes on. Without the opens the slippage line is 0 (logged).
 */
export async function periodAttribution(
  ctx: LiveContext,
  dates: readonly string[],
  closedTrades: readonly ClosedTradeRecord[],
): Promise<PnlAttribution | null> {
  try {
    const costed = await costedFills(ctx, dates);
    const symbols = [...new Set(costed.filter((f) => f.marketOnOpen).map((f) => f.symbol))];
    const from = dates[0];
    const to = dates.at(-1);
    let prices: Pick<SessionPrices, 'open'> = { open: () => undefined };
    if (symbols.length > 0 && from !== undefined && to !== undefined) {
      try {
        prices = seriesPrices(await ctx.marketData.getDailyBars({ symbols, from, to, adjustment: 'raw' }));
      } catch (error) {
        ctx.log.warn('no official opens for the attribution: slippage not costed', {
          from,
          to,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
    return attributePnl(
      closedTrades.map((t) => ({ sleeve: t.strategy, symbol: t.symbol, side: t.side, pnlCents: t.pnlCents })),
      fillCosts(costed, prices),
    );
  } catch (error) {
    ctx.log.warn('attribution not computed', {
      error: error instanceof Error ? error.message : String(error),
    });
    return null;
  }
}
