/**
 * P&L attribution (docs/validation.md, "Attribution"): a period's realized P&L by sleeve, symbol and
 * side, with the costs paid in the period (commission, slippage) on their own lines. Every figure is
 * integer cents from the ledger, so the parts add up to the total exactly:
 *
 *   Σ bySleeve = Σ bySymbol = Σ bySide = beforeCosts, and beforeCosts − commission − slippage = total
 *
 * where total is the realized P&L of the round trips closed in the period (net of their commission,
 * as the ledger records it) and a key's line is its realized P&L plus the costs its fills paid in the
 * period (what it earned before them). Pure: the caller reads the ledger and the opens.
 */
import { InvalidParameterError } from '../errors.js';
import { type Cents, toCents } from '../ledger/money.js';
import type { SessionPrices } from './paper.js';

/** The long or short book a trade or a fill belongs to (a sell that closes a long is `long`). */
export type BookSide = 'long' | 'short';

/** A round trip closed in the period. */
export interface AttributedTrade {
  readonly sleeve: string;
  readonly symbol: string;
  readonly side: BookSide;
  /** Realized P&L net of its commission, cents (`ClosedTradeRecord.pnlCents`). */
  readonly pnlCents: Cents;
}

/** What one fill of the period paid, cents, positive = a cost. */
export interface FillCost {
  readonly sleeve: string;
  readonly symbol: string;
  readonly side: BookSide;
  readonly commissionCents: Cents;
  readonly slippageCents: Cents;
}

export interface PnlAttribution {
  /** Realized P&L of the period's closed round trips, cents. */
  readonly totalCents: Cents;
  /** total + commission + slippage: what the lines below add up to. */
  readonly beforeCostsCents: Cents;
  readonly bySleeve: Readonly<Record<string, Cents>>;
  readonly bySymbol: Readonly<Record<string, Cents>>;
  readonly bySide: Readonly<Record<string, Cents>>;
  readonly costs: { readonly commissionCents: Cents; readonly slippageCents: Cents };
}

const isCents = (x: number) => Number.isSafeInteger(x);

/** The attribution of the trades and the fills' costs; a figure not in whole cents is refused. */
export function attributePnl(trades: readonly AttributedTrade[], costs: readonly FillCost[]): PnlAttribution {
  const bySleeve: Record<string, Cents> = {};
  const bySymbol: Record<string, Cents> = {};
  const bySide: Record<string, Cents> = {};
  const add = (key: { sleeve: string; symbol: string; side: BookSide }, cents: Cents) => {
    bySleeve[key.sleeve] = (bySleeve[key.sleeve] ?? 0) + cents;
    bySymbol[key.symbol] = (bySymbol[key.symbol] ?? 0) + cents;
    bySide[key.side] = (bySide[key.side] ?? 0) + cents;
  };
  let totalCents = 0;
  for (const t of trades) {
    if (!isCents(t.pnlCents))
      throw new InvalidParameterError(
        `attribution: ${t.sleeve} ${t.symbol} pnlCents ${t.pnlCents} is not whole cents`,
      );
    totalCents += t.pnlCents;
    add(t, t.pnlCents);
  }
  let commissionCents = 0;
  let slippageCents = 0;
  for (const c of costs) {
    if (!isCents(c.commissionCents) || !isCents(c.slippageCents))
      throw new InvalidParameterError(`attribution: ${c.sleeve} ${c.symbol} costs are not whole cents`);
    commissionCents += c.commissionCents;
    slippageCents += c.slippageCents;
    add(c, c.commissionCents + c.slippageCents);
  }
  return {
    totalCents,
    beforeCostsCents: totalCents + commissionCents + slippageCents,
    bySleeve,
    bySymbol,
    bySide,
    costs: { commissionCents, slippageCents },
  };
}

/** A ledger fill with what the attribution needs to cost it. */
export interface CostedFill {
  readonly sleeve: string;
  readonly symbol: string;
  readonly side: 'buy' | 'sell';
  readonly qty: number;
  readonly price: number;
  /** Trading date (`YYYY-MM-DD`). */
  readonly date: string;
  /** A market-on-open fill: its slippage is measured against the session open. */
  readonly marketOnOpen: boolean;
  /** An opening fill (entry) or a closing one: decides the book side with `side`. */
  readonly opens: boolean;
  /** Commission in cents (the live ledger's fills carry none). */
  readonly commissionCents?: Cents;
}

/**
 * Each fill's costs: slippage s × (price − open) × qty in cents for a market-on-open fill (s = +1
 * buy, −1 sell; a worse fill costs more), 0 for any other fill or when the open is unknown.
 */
export function fillCosts(fills: readonly CostedFill[], prices: Pick<SessionPrices, 'open'>): FillCost[] {
  return fills.map((f) => {
    const open = f.marketOnOpen ? prices.open(f.symbol, f.date) : undefined;
    const sign = f.side === 'buy' ? 1 : -1;
    return {
      sleeve: f.sleeve,
      symbol: f.symbol,
      side: (f.side === 'buy') === f.opens ? 'long' : 'short',
      commissionCents: f.commissionCents ?? 0,
      slippageCents: open === undefined ? 0 : toCents(sign * (f.price - open) * f.qty),
    };
  });
}

/** Markdown lines for Slack. */
export function attributionLines(a: PnlAttribution): string[] {
  const money = (cents: Cents) =>
    (cents / 100).toLocaleString('en-US', { style: 'currency', currency: 'USD' });
  const row = (r: Readonly<Record<string, Cents>>) =>
    Object.entries(r)
      .sort(([x], [y]) => x.localeCompare(y))
      .map(([k, v]) => `${k} ${money(v)}`)
      .join(', ') || '-';
  return [
    `*Attribution* (realized ${money(a.totalCents)} = ${money(a.beforeCostsCents)} before costs − commission ${money(a.costs.commissionCents)} − slippage ${money(a.costs.slippageCents)})`,
    `• by sleeve: ${row(a.bySleeve)}`,
    `• by symbol: ${row(a.bySymbol)}`,
    `• by side: ${row(a.bySide)}`,
  ];
}
