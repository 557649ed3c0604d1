/** The `execute-orders` step of the live trading day, on its EventBridge schedule (docs/live.md). */
import { executeOrders } from '../../shared/live/execute-orders.js';
import { liveHandler } from '../../shared/runtime/live.js';

export const handler = liveHandler('execute-orders', executeOrders);
