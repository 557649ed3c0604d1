/**
 * A TCP link in front of a local server (dynalite, the Upstash bridge) that a test or a rehearsal
 * can cut and restore, to play an outage of a real dependency mid-step: `cut()` resets every open
 * connection and every new one (the client sees ECONNRESET, as with a server that went away);
 * `restore()` lets connections through again, to the same server with its data intact (a restart
 * of DynamoDB or Upstash loses nothing durable). Bytes pass through untouched.
 */

import type { AddressInfo } from 'node:net';
import { createConnection, createServer, type Socket } from 'node:net';

/** A running link. */
export interface FaultLink {
  /** `http://127.0.0.1:<port>`: use it in place of the target's URL. */
  readonly url: string;
  /** False while cut. */
  readonly up: boolean;
  /** Resets every open connection and refuses new ones until {@link restore}. */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

/** Starts a link to `target` (`http://host:port`) on a free port of 127.0.0.1. */
export async function startFaultLink(target: string): Promise<FaultLink> {
  const { hostname, port } = new URL(target);
  const open = new Set<Socket>();
  let up = true;
  const track = (socket: Socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
  };
  const server = createServer((client) => {
    if (!up) {
      client.resetAndDestroy();
      return;
    }
    const upstream = createConnection({ host: hostname, port: Number(port) });
    track(client);
    track(upstream);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    get up() {
      return up;
    },
    cut() {
      up = false;
      for (const socket of open) socket.resetAndDestroy();
      open.clear();
    },
    restore() {
      up = true;
    },
    close() {
      for (const socket of open) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
