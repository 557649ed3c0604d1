/**
 * The crypto bot's steps: the live trading day's (the same step code as the equity bot's) and the
 * hourly funding-rate monitor; each is a Lambda function (`functions/crypto-<step>/handler.ts`) on
 * its own UTC schedule. Free of runtime imports, so the CDK app can name the functions from it.
 */
import type { LiveStep } from './steps.js';

export const CRYPTO_STEPS = [
  'market-open-check',
  'generate-signals',
  'execute-orders',
  'risk-check',
  'end-of-day',
  'funding-rates',
] as const satisfies readonly (LiveStep | 'funding-rates')[];

/** One of the crypto bot's steps. */
export type CryptoStep = (typeof CRYPTO_STEPS)[number];
