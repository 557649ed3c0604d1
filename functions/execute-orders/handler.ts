/** The `execute-orders` step of the live trading day, on its EventBridge schedule (docs/live.md). */
import { executeOrders } from '../../shared/live/execute-orders.js';
import { equityLiveHandler } from '../../shared/runtime/equity-live.js';

export const handler = equityLiveHandler('execute-orders', executeOrders);
