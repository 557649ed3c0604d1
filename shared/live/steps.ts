/**
 * The live steps, in schedule order: each is a Lambda function (`functions/<step>/handler.ts`) on
 * its own schedule. Free of runtime imports, so the CDK app can name the functions from it.
 */
export const LIVE_STEPS = [
  'market-open-check',
  'generate-signals',
  'execute-orders',
  'risk-check',
  'end-of-day',
] as const;

/** One of the live steps. */
export type LiveStep = (typeof LIVE_STEPS)[number];

/**
 * execute-orders' Lambda timeout (both bots' stacks take it from here): no run lives longer, so a
 * claim another run made less than this long ago may belong to a run still on its way to the
 * broker, and is left to it (the claim lease, `executeOrders`).
 */
export const EXECUTE_ORDERS_TIMEOUT_SECONDS = 180;
