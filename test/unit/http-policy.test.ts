/**
 * One status classification for the three HTTP senders (lib/http-policy.ts): the same table of answers and
 * connection failures, sent through the registry transport, the Azure calls and the CLI's client of a deployed
 * service, against a real HTTP server on 127.0.0.1 — each must send again exactly what the policy calls temporary.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../../lib/azure/http.js';
import { ImportsClient, sendOnce } from '../../lib/cli/client.js';
import { RETRYABLE_STATUS, isRetryableStatus, parseRetryAfter } from '../../lib/http-policy.js';
import { Transport } from '../../lib/oci/transport.js';
import type { RetryPolicy } from '../../lib/retry.js';

const fast: RetryPolicy = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2, maxRetryAfterMs: 1000 };

/** Every answer a sender may see, and what the policy says of it. */
const STATUSES = [
  200, 201, 202, 400, 401, 403, 404, 405, 408, 409, 412, 413, 416, 422, 425, 429, 500, 501, 502, 503, 504, 505, 507,
];

let server: Server;
let base: string;
/** What the server does with the next requests: answer a status, or reset the connection. */
let behaviour: { status: number } | 'reset' = { status: 200 };
let requests = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    requests++;
    req.resume();
    if (behaviour === 'reset') {
      req.socket.destroy();
      return;
    }
    const body = JSON.stringify(
      behaviour.status < 300
        ? { id: 'x', status: 'queued' }
        : { error: { code: `E${behaviour.status}`, message: 'no' } },
    );
    res.writeHead(behaviour.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const senders: Record<string, () => Promise<unknown>> = {
  'registry transport (lib/oci/transport.ts)': () =>
    new Transport({ retry: fast }).send({ method: 'GET', url: new URL(`${base}/v2/a/manifests/1`), scopes: [] }),
  'Azure calls (lib/azure/http.ts)': () => call('GET', new URL(`${base}/oauth2/token`), {}, undefined, { retry: fast }),
  'CLI client (lib/cli/client.ts)': () => new ImportsClient(`${base}/api`, undefined, sendOnce, fast).status('x'),
};

/** Requests one call made against the server's current behaviour. */
async function attempts(send: () => Promise<unknown>): Promise<number> {
  requests = 0;
  await send().catch(() => undefined);
  return requests;
}

describe('the three HTTP senders agree on what is retried', () => {
  it.each(Object.keys(senders))('%s: a retryable status is sent maxAttempts times, any other once', async (name) => {
    const seen: Record<number, number> = {};
    for (const status of STATUSES) {
      behaviour = { status };
      seen[status] = await attempts(senders[name]!);
    }
    const expected = Object.fromEntries(STATUSES.map((s) => [s, isRetryableStatus(s) ? fast.maxAttempts : 1]));
    expect(seen).toEqual(expected);
  });

  it.each(Object.keys(senders))('%s: a reset connection is retried', async (name) => {
    behaviour = 'reset';
    expect(await attempts(senders[name]!)).toBe(fast.maxAttempts);
  });

  it('the table is the one of go-containerregistry and regclient, plus 425 Too Early', () => {
    expect([...RETRYABLE_STATUS].sort()).toEqual([408, 425, 429, 500, 502, 503, 504]);
    expect(parseRetryAfter('7')).toBe(7000);
  });
});
