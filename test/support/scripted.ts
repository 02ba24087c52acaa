/**
 * A scripted HTTP peer for request/response tests (as go-containerregistry's `mockTransport` and
 * regclient's `reqresp`): the test lists every exchange it expects, in order — the request (method,
 * path, and any headers that matter) and the answer to give. The server answers each request with the
 * next exchange only if the request matches it, and `verify()` fails the test on a request that did not
 * match, an unexpected extra one, or an expected one that never came. A group (an array of exchanges) may
 * arrive in any order: requests the client sends at once.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ExpectedRequest {
  readonly method: string;
  /** Path and query as sent, or a pattern for it. */
  readonly path: string | RegExp;
  /** Header values that must match (lower-case names); `undefined` means "must be absent". */
  readonly headers?: Record<string, string | RegExp | undefined>;
  /** The body as text, or a check of it. */
  readonly body?: string | ((body: Buffer) => boolean);
}

export type Answer =
  | { readonly status: number; readonly headers?: Record<string, string>; readonly body?: string | Buffer }
  /** Drop the connection without answering. */
  | { readonly reset: true }
  /** Send headers and these bytes, then nothing more. */
  | { readonly stallAfter: Buffer; readonly status: number; readonly headers?: Record<string, string> }
  /** Never answer (the connection stays open). */
  | { readonly hang: true };

export interface Exchange {
  readonly req: ExpectedRequest;
  readonly res: Answer | ((req: IncomingMessage, body: Buffer, peer: ScriptedPeer) => Answer);
}

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
}

export interface ScriptedPeer {
  /** `127.0.0.1:PORT` */
  readonly host: string;
  readonly url: string;
  readonly seen: SeenRequest[];
  /** Throws when the script was not followed exactly. */
  verify(): void;
  close(): Promise<void>;
}

export async function scripted(script: readonly (Exchange | readonly Exchange[])[]): Promise<ScriptedPeer> {
  const pending: Exchange[][] = script.map((e) => (Array.isArray(e) ? [...e] : [e as Exchange]));
  const problems: string[] = [];
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => undefined);
    req.on('end', () => respond(req, res, Buffer.concat(chunks)));
  });
  const respond = (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
    const path = req.url ?? '/';
    seen.push({ method: req.method ?? '', path, headers: req.headers, body });
    const group = pending[0];
    const index = group ? group.findIndex((e) => !mismatchOf(e.req, req, path, body)) : -1;
    if (!group || index < 0) {
      problems.push(
        `request ${seen.length} ${req.method} ${path}: ${group ? mismatchOf(group[0]!.req, req, path, body) : 'no more requests were expected'}`,
      );
      res.writeHead(599).end();
      return;
    }
    const [next] = group.splice(index, 1);
    if (group.length === 0) pending.shift();
    answer(res, typeof next!.res === 'function' ? next!.res(req, body, peer) : next!.res);
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const peer: ScriptedPeer = {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    seen,
    verify() {
      const missing = pending.flat().map((e) => `expected ${e.req.method} ${String(e.req.path)} never came`);
      if (problems.length || missing.length)
        throw new Error(`script not followed:\n  ${[...problems, ...missing].join('\n  ')}`);
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return peer;
}

function mismatchOf(want: ExpectedRequest, req: IncomingMessage, path: string, body: Buffer): string | undefined {
  if (want.method !== req.method) return `expected ${want.method} ${String(want.path)}`;
  if (typeof want.path === 'string' ? want.path !== path : !want.path.test(path))
    return `expected path ${String(want.path)}`;
  for (const [name, value] of Object.entries(want.headers ?? {})) {
    const got = req.headers[name];
    const text = Array.isArray(got) ? got.join(', ') : got;
    if (
      value === undefined
        ? text !== undefined
        : text === undefined || (typeof value === 'string' ? text !== value : !value.test(text))
    ) {
      return `header ${name}: expected ${String(value)}, got ${String(text)}`;
    }
  }
  if (
    want.body !== undefined &&
    (typeof want.body === 'string' ? body.toString('utf8') !== want.body : !want.body(body))
  ) {
    return `unexpected body (${body.length} bytes)`;
  }
  return undefined;
}

function answer(res: ServerResponse, a: Answer): void {
  if ('reset' in a) {
    res.socket?.resetAndDestroy();
    return;
  }
  if ('hang' in a) return;
  if ('stallAfter' in a) {
    res.writeHead(a.status, a.headers);
    res.write(a.stallAfter);
    return;
  }
  const body = a.body === undefined ? undefined : Buffer.isBuffer(a.body) ? a.body : Buffer.from(a.body);
  res.writeHead(a.status, { 'content-length': String(body?.length ?? 0), ...a.headers });
  res.end(body);
}

/** The spec's error JSON. */
export function registryErrors(code: string, message: string): string {
  return JSON.stringify({ errors: [{ code, message }] });
}
