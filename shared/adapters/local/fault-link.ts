/**
 * A TCP link in front of a local server (dynalite, the Upstash bridge) that a test or a rehearsal
 * can cut and restore, to play an outage of a real dependency mid-step: `cut()` resets every open
 * connection and every new one (the client sees ECONNRESET, as with a server that went away);
 * `restore()` lets connections through again, to the same server with its data intact (a restart
 * of DynamoDB or Upstash loses nothing durable). Bytes pass through untouched.
 */

import { createConnection, createServer, type Socket } from 'node:net';
import { listenOnLoopback } from './listen.js';

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
  const linkPort = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${linkPort}`,
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
