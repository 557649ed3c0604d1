/**
 * A `fetch` for the Alpaca SDK's `fetchApi` on `node:http` / `node:https` agents that keep their
 * sockets open while idle (`keepAlive`), for a long-running process such as the stream task.
 *
 * Why not the global `fetch`: its pool (undici) closes a socket idle for 4 s unless the server
 * says otherwise, and the stream talks to the broker every 5 s (its reload) and, for an exit, on a
 * few sockets at once: without this, an exit would often pay new TCP and TLS handshakes before its
 * cancel, list and order POST. The `node:http` client also costs about half the CPU of `fetch` per
 * request (measured on the local broker), which is on the exit's critical path.
 *
 * It supports what the SDK sends: a method, headers, a string or byte body, and an abort signal
 * (the SDK's per-attempt timeout). The answer is a standard `Response` (no body for 204/205/304),
 * so the SDK's handling, retries and errors are unchanged. A failed request rejects with the socket's
 * error (`TypeError('fetch failed', { cause })`, as `fetch` does), an aborted one with the signal's reason.
 */
import http from 'node:http';
import https from 'node:https';

export interface KeepAliveFetchOptions {
  /** Sockets kept per origin (default 8: the reload's three requests and an exit's three at once). */
  readonly maxSockets?: number;
}

type FetchInput = Parameters<typeof fetch>[0];
type FetchInit = NonNullable<Parameters<typeof fetch>[1]>;

const NULL_BODY = new Set([101, 204, 205, 304]);

function headerRecord(headers: FetchInit['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers === undefined) return out;
  new Headers(headers).forEach((value, name) => {
    out[name] = value;
  });
  return out;
}

function bodyOf(body: FetchInit['body']): string | Uint8Array | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string' || body instanceof Uint8Array) return body;
  if (body instanceof URLSearchParams) return body.toString();
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  throw new TypeError('keep-alive fetch: only string, byte and URLSearchParams bodies are supported');
}

/** A `fetch` on keep-alive agents of its own (one for http, one for https); `close()` ends their sockets. */
export function keepAliveFetch(options: KeepAliveFetchOptions = {}): typeof fetch & { close(): void } {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 8 };
  const agents = { 'http:': new http.Agent(agentOptions), 'https:': new https.Agent(agentOptions) };
  const run = (input: FetchInput, init: FetchInit = {}): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const protocol = url.protocol;
    if (protocol !== 'http:' && protocol !== 'https:') {
      return Promise.reject(new TypeError(`keep-alive fetch: ${url.protocol} is not http or https`));
    }
    const signal = init.signal ?? undefined;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const body = bodyOf(init.body);
    return new Promise<Response>((resolve, reject) => {
      const request = (protocol === 'https:' ? https : http).request(
        url,
        { method: init.method ?? 'GET', headers: headerRecord(init.headers), agent: agents[protocol] },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', (error) => reject(new TypeError('fetch failed', { cause: error })));
          response.on('end', () => {
            signal?.removeEventListener('abort', onAbort);
            const status = response.statusCode ?? 0;
            const headers = new Headers();
            for (const [name, value] of Object.entries(response.headers)) {
              if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
            }
            resolve(
              new Response(NULL_BODY.has(status) ? null : Buffer.concat(chunks), {
                status,
                statusText: response.statusMessage ?? '',
                headers,
              }),
            );
          });
        },
      );
      const onAbort = () => {
        request.destroy();
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      request.on('error', (error) => {
        signal?.removeEventListener('abort', onAbort);
        reject(signal?.aborted ? signal.reason : new TypeError('fetch failed', { cause: error }));
      });
      request.end(body);
    });
  };
  return Object.assign(run as typeof fetch, {
    close() {
      agents['http:'].destroy();
      agents['https:'].destroy();
    },
  });
}
