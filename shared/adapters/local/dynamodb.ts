/**
 * Local DynamoDB for tests and offline runs: dynalite (pure JS, in memory) served in-process on
 * 127.0.0.1, and a document client pointed at it with fake credentials, so no call can reach AWS.
 *
 * dynalite has conditional writes, queries, GSIs and batch calls, but no transactions, no
 * UpdateTimeToLive (items never expire locally) and no PartiQL: the state store needs none of them.
 */
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { stateStoreDocumentClient } from '../dynamodb/state-store.js';
import { listenOnLoopback } from './listen.js';

/** The part of dynalite's options used here (it ships no types). */
interface DynaliteOptions {
  /** How long a new table stays CREATING (dynalite's default: 500 ms). */
  readonly createTableMs?: number;
  readonly deleteTableMs?: number;
  readonly updateTableMs?: number;
}

const loadCommonJs = createRequire(import.meta.url);
const dynalite = loadCommonJs('dynalite') as (options?: DynaliteOptions) => Server;

/** The region set on the local client; any valid name works, dynalite ignores it. */
export const LOCAL_DYNAMO_REGION = 'us-east-1';

/** A running local DynamoDB. */
export interface LocalDynamo {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  /** A document client on it, with the state store's marshalling options. */
  readonly client: DynamoDBDocumentClient;
  /** Destroys the client and stops the server (its data is gone). */
  close(): Promise<void>;
}

/** Starts dynalite in memory on 127.0.0.1 (`port` 0, the default, picks a free port). */
export async function startLocalDynamo(options: { port?: number } = {}): Promise<LocalDynamo> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const port = await listenOnLoopback(server, options.port);
  const endpoint = `http://127.0.0.1:${port}`;
  const base = new DynamoDBClient({
    endpoint,
    region: LOCAL_DYNAMO_REGION,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const client = stateStoreDocumentClient(base);
  return {
    endpoint,
    client,
    close: async () => {
      client.destroy();
      base.destroy();
      await new Promise<void>((resolve, reject) => {
        server.close((error?: Error) => (error ? reject(error) : resolve()));
        server.closeIdleConnections();
      });
    },
  };
}
