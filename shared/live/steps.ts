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

/**
 * How long an intent a run recorded or claimed for sending may still be on its way to the broker
 * from that run, counted from the run's last write of it on the clock (`updatedAt`, stamped by
 * `placeIntentOnce` at its creation, execute-orders' claim, and every sender immediately before its
 * POST, `stampBeforeSend`): the longest life of any run that sends orders (execute-orders' 180 s;
 * the risk check and the kill switch live 120 s) plus one broker request (the adapters' 30 s
 * timeout), the POST that may land after its run timed out. Until then an intent not at the broker
 * is never superseded under another number (`supersedeStaleResend`); past it, the supersede's
 * settle and a late sender's stamp are conditional on the same `updatedAt`: one of them wins.
 */
export const SENDER_LEASE_SECONDS = EXECUTE_ORDERS_TIMEOUT_SECONDS + 30;
