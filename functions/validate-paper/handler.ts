/**
 * The weekly paper validation (docs/validation.md), on its EventBridge schedule in the paper stage
 * (Friday after the close): every paper session so far against its shadow backtest, the go/no-go
 * stored for the live gate and sent to the alert topic. Idempotent per scheduled time.
 */
import * as z from 'zod';
import { weeklyPaperValidation } from '../../shared/live/paper-validation.js';
import { equityRuntime } from '../../shared/runtime/equity-live.js';
import { liveEventHandler, logger } from '../../shared/runtime/live.js';

const eventSchema = z
  .object({ step: z.literal('validate-paper'), scheduledTime: z.iso.datetime({ offset: true }) })
  .strict();

export const handler = liveEventHandler({
  name: 'validate-paper',
  schema: eventSchema,
  idempotencyKey: '[step, scheduledTime]',
  requireIdempotencyKey: true,
  runtime: equityRuntime,
  run: async (event: z.infer<typeof eventSchema>, context) => {
    logger.appendKeys({ step: event.step, scheduledTime: event.scheduledTime });
    const result = await weeklyPaperValidation(await context(), event.scheduledTime);
    logger.info('paper validation done', { result });
    return result;
  },
});
