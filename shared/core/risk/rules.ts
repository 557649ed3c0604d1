import * as z from 'zod';

const fraction = z.number().gt(0).max(1);

/** Stop management. Every entry gets a stop: the strategy's, or `initialAtr` × ATR from the decision close. */
export const stopRulesSchema = z
  .object({
    atrPeriod: z.number().int().min(1).default(14),
    /** Stop distance in ATRs for an entry whose strategy gives no stop. */
    initialAtr: z.number().positive().default(2),
    /** ATR trailing stop from daily closes, in ATRs; absent: no trailing. It only ratchets in the trade's favour. */
    trailAtr: z.number().positive().optional(),
    /** Move the stop to the entry price once the close is this many R (initial risk) in profit; absent: off. */
    breakEvenAtR: z.number().positive().optional(),
    /** Exit at the next open after this many sessions in the trade; absent: off. */
    timeStopDays: z.number().int().positive().optional(),
    /** Take-profit at this many R from the decision close, making a bracket; absent: none. */
    takeProfitR: z.number().positive().optional(),
  })
  .strict();

/** The longest correlation window: 10,000 sessions (about 40 years of trading days). */
export const MAX_CORRELATION_WINDOW = 10_000;

export const correlationRulesSchema = z
  .object({
    /**
     * Daily returns in the rolling window, 5 to `MAX_CORRELATION_WINDOW` (the live functions and
     * the reference engine hold symbols × window returns).
     */
    window: z.number().int().min(5).max(MAX_CORRELATION_WINDOW).default(60),
    /** |ρ| at or above which an entry counts as strongly correlated with an open position. */
    threshold: z.number().gt(0).max(1).default(0.7),
    /** Factor applied to the risk budget of such an entry. */
    reduction: z.number().min(0).max(1).default(0.5),
  })
  .strict();

/**
 * Every risk parameter, as in `config/equity-strategy.yaml` under `risk:`. The backtest and the
 * live functions read the same object.
 */
export const riskRulesSchema = z
  .object({
    /** Fraction of equity at risk per trade (quantity × distance to the stop). */
    riskPerTrade: fraction.default(0.02),
    /** No position's value above this fraction of equity at the decision. */
    maxPositionFraction: fraction.default(0.2),
    /** Sum over open positions of the loss if every stop were hit, as a fraction of equity. */
    maxPortfolioHeat: fraction.default(0.1),
    /** Drawdown breaker, from the high-water mark of equity. */
    maxDrawdown: fraction.default(0.15),
    /** Backtests only: sessions after a drawdown trip before the automatic reset that stands in for the manual one. */
    drawdownCoolOffDays: z.number().int().min(1).default(20),
    /** Daily loss breaker, from the day's starting equity. */
    dailyLossLimit: fraction.default(0.05),
    /** Close every position at the next open when the daily loss breaker trips. */
    flattenOnDailyLoss: z.boolean().default(false),
    /** Scale of the Kelly fraction used as a cap on the risk per trade (0.25 = quarter Kelly). */
    kellyFraction: fraction.default(0.25),
    /** Closed trades in the Kelly estimate's rolling window. */
    kellyWindow: z.number().int().min(2).default(50),
    /** Closed trades needed before the Kelly cap is used. */
    kellyMinTrades: z.number().int().min(2).default(20),
    /** Floor of the risk per trade when Kelly says there is no edge, so the estimate can recover. */
    kellyMinRisk: z.number().min(0).max(1).default(0.0025),
    /** Fraction of buying power left unspent by entries sized at the decision. */
    cashBuffer: z.number().min(0).lt(1).default(0.02),
    stops: stopRulesSchema.default({ atrPeriod: 14, initialAtr: 2 }),
    correlation: correlationRulesSchema.default({ window: 60, threshold: 0.7, reduction: 0.5 }),
    /**
     * Volatility-scaled position cap (off when absent): no position above
     * `targetVolatility / annualised volatility` of equity, volatility from `window` daily returns.
     */
    volatilityCap: z
      .object({
        targetVolatility: fraction,
        window: z.number().int().min(5).default(30),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((r) => r.kellyMinTrades <= r.kellyWindow, {
    message: 'kellyMinTrades must not exceed kellyWindow',
    path: ['kellyMinTrades'],
  });

export type RiskRules = z.infer<typeof riskRulesSchema>;
export type StopRules = z.infer<typeof stopRulesSchema>;

/** The rules with every default: what `--risk` applies without a config. */
export const defaultRiskRules = (): RiskRules => riskRulesSchema.parse({});
