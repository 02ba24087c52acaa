/**
 * A plain HTTP forward proxy in front of a registry on loopback that lets a test act on each request before it
 * is forwarded: delay it, drop it (socket destroyed), or do something else first (kill the host's worker process
 * while a step is talking to the registry). Requests and answers stream through unchanged.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type TapDecision = 'forward' | 'drop';

/** Called for every request; may wait (a delay) and decides whether it goes on. */
export type TapHook = (req: { method: string; path: string }) => TapDecision | Promise<TapDecision>;

export interface TapProxy {
  /** `127.0.0.1:PORT` */
  readonly host: string;
  hook: TapHook;
  /** Every request seen, in arrival order. */
  readonly seen: { method: string; path: string }[];
  close(): Promise<void>;
}

export async function startTapProxy(target: string): Promise<TapProxy> {
  const [targetHost, targetPort] = [
    target.slice(0, target.lastIndexOf(':')),
    Number(target.slice(target.lastIndexOf(':') + 1)),
  ];
  const seen: { method: string; path: string }[] = [];
  const proxy: { hook: TapHook } = { hook: () => 'forward' };
  const server: Server = createServer((req: IncomingMessage, res) => {
    const entry = { method: req.method ?? 'GET', path: req.url ?? '/' };
    seen.push(entry);
    void (async () => {
      let decision: TapDecision;
      try {
        decision = await proxy.hook(entry);
      } catch {
        decision = 'drop';
      }
      if (decision === 'drop' || req.destroyed) {
        req.socket.destroy();
        return;
      }
      const upstream = request(
        { host: targetHost, port: targetPort, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => req.socket.destroy());
      req.pipe(upstream);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    get hook() {
      return proxy.hook;
    },
    set hook(h: TapHook) {
      proxy.hook = h;
    },
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
