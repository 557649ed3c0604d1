import type { AddressInfo, Server } from 'node:net';

/**
 * Starts `server` listening on 127.0.0.1 at `port` (0, the default, picks a free port) and resolves
 * with the port it listens on; a failure to listen (e.g. the port is taken) rejects with its error.
 */
export async function listenOnLoopback(server: Server, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}
