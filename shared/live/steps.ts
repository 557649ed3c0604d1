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
