import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import * as z from 'zod';
import { AlpacaMarketData } from '../adapters/alpaca/market-data.js';
import { ConfigError } from '../core/errors.js';
import type { MarketData } from '../core/ports/market-data.js';
import type { PipelineEnv } from './pipeline.js';

const alpacaSecretSchema = z.object({ keyId: z.string().min(1), secret: z.string().min(1) });

/**
 * The prepare step's market data: Alpaca, with the keys read from the secret `ALPACA_SECRET_ARN`
 * (JSON `{ "keyId": "...", "secret": "..." }`) only when the step has bars to fetch.
 */
export function pipelineMarketData(env: PipelineEnv): () => Promise<MarketData> {
  return async () => {
    if (env.ALPACA_SECRET_ARN === undefined)
      throw new ConfigError('pipeline prepare: ALPACA_SECRET_ARN is not set');
    const response = await new SecretsManagerClient({}).send(
      new GetSecretValueCommand({ SecretId: env.ALPACA_SECRET_ARN }),
    );
    const secret = alpacaSecretSchema.safeParse(JSON.parse(response.SecretString ?? '{}'));
    if (!secret.success) {
      throw new ConfigError('the Alpaca data secret must be JSON {"keyId": "...", "secret": "..."}');
    }
    return new AlpacaMarketData({ keyId: secret.data.keyId, secret: secret.data.secret });
  };
}
