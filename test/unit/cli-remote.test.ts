/**
 * The CLI as a client of an endpoint (lib/cli/remote.ts, lib/cli/client.ts) against a scripted HTTP server:
 * what it sends (the key header, one Repeatability-Request-ID kept across a retried POST, exactly the request
 * fields), how it follows the status (Retry-After), its exit codes and messages, and what it refuses (a
 * status URL on another origin gets no key; plain http off loopback; --target with --endpoint).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

type Reply = (req: Seen, n: number) => { status: number; body?: unknown; headers?: Record<string, string> };

const ID = '0f8fad5b-d9cb-469f-a165-70867728950e';
const progress = (copied: number) => ({
  manifests: 1,
  blobsTotal: 2,
  blobsDone: copied ? 2 : 0,
  bytesTotal: 100,
  bytesCopied: copied,
});
const view = (status: string, extra: Record<string, unknown> = {}) => ({
  id: ID,
  status,
  source: 'docker.io/library/nginx:1.27',
  targets: ['r.example/nginx:1.27'],
  createdAt: '2025-06-01T00:00:00Z',
  updatedAt: '2025-06-01T00:00:00Z',
  progress: progress(status === 'succeeded' ? 100 : 0),
  ...extra,
});

let server: Server | undefined;
afterEach(async () => {
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
});

async function serve(reply: Reply): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      const s = { method: req.method!, url: req.url!, headers: req.headers, body };
      seen.push(s);
      const r = reply(s, seen.length);
      res
        .writeHead(r.status, { 'content-type': 'application/json', ...r.headers })
        .end(r.body === undefined ? '' : JSON.stringify(r.body));
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}/api`, seen };
}

const env = { OCI_IMPORT_KEY: 'k3y' };

describe('oci-import against an endpoint', () => {
  it('imports: POSTs the request fields with the key, follows the status with Retry-After, exits 0 with the digest', async () => {
    const { url, seen } = await serve((req, n) => {
      if (req.method === 'POST')
        return {
          status: 202,
          body: { id: ID, status: 'queued', statusUrl: `${url}/imports/${ID}` },
          headers: { 'retry-after': '0' },
        };
      return n < 4
        ? { status: 200, body: view('running'), headers: { 'retry-after': '0' } }
        : { status: 200, body: view('succeeded', { digest: 'sha256:abc' }) };
    });
    const run = await runCli(
      [
        'import',
        '--endpoint',
        url,
        '--source',
        'docker.io/library/nginx:1.27',
        '--image',
        'nginx:1.27',
        '--platform',
        'linux/amd64',
        '--force',
        '--include-referrers',
        '--credential',
        'hub',
      ],
      env,
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('imported docker.io/library/nginx:1.27 → r.example/nginx:1.27\ndigest sha256:abc\n');
    expect(JSON.parse(seen[0]!.body)).toEqual({
      source: 'docker.io/library/nginx:1.27',
      images: ['nginx:1.27'],
      platforms: ['linux/amd64'],
      credential: 'hub',
      force: true,
      includeReferrers: true,
    });
    expect(seen.every((s) => s.headers['x-functions-key'] === 'k3y')).toBe(true);
    expect(seen[0]!.headers['repeatability-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Date(String(seen[0]!.headers['repeatability-first-sent'])).toUTCString()).toBe(
      seen[0]!.headers['repeatability-first-sent'],
    );
    expect(seen.filter((s) => s.method === 'GET')).toHaveLength(3);
    expect(run.stderr).toContain(`import ${ID} queued`);
  });

  it('retries the POST after a 503 with Retry-After, keeping its Repeatability-Request-ID', async () => {
    const { url, seen } = await serve((req, n) =>
      n === 1
        ? { status: 503, body: {}, headers: { 'retry-after': '0' } }
        : { status: 202, body: { id: ID, status: 'queued', statusUrl: `${url}/imports/${ID}` } },
    );
    const run = await runCli(['import', '--endpoint', url, '--no-wait', '--source', 'nginx:1.27'], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe(`${ID}\n${url}/imports/${ID}\n`);
    expect(seen).toHaveLength(2);
    expect(seen[1]!.headers['repeatability-request-id']).toBe(seen[0]!.headers['repeatability-request-id']);
  });

  it('does not wait for a 503 the service means to keep (a code, no Retry-After): one request, exit 1 with its code', async () => {
    const { url, seen } = await serve(() => ({
      status: 503,
      body: { error: { code: 'TARGET_REGISTRY_NOT_SET', message: 'set TARGET_REGISTRY' } },
      headers: { 'x-ms-error-code': 'TARGET_REGISTRY_NOT_SET' },
    }));
    const run = await runCli(['import', '--endpoint', url, '--no-wait', '--source', 'nginx:1.27'], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('[TARGET_REGISTRY_NOT_SET]');
    expect(seen).toHaveLength(1);
  });

  it('exits 1 with the code and message of a failed or canceled import, or of a refusal', async () => {
    for (const [final, expected] of [
      [
        view('failed', { error: { code: 'SOURCE_NOT_FOUND', message: 'not there' } }),
        'import failed [SOURCE_NOT_FOUND]: not there',
      ],
      [
        view('canceled', { error: { code: 'CANCELED', message: 'the import was canceled' } }),
        'import canceled [CANCELED]: the import was canceled',
      ],
    ] as const) {
      const { url } = await serve((req) =>
        req.method === 'POST'
          ? {
              status: 202,
              body: { id: ID, status: 'queued', statusUrl: `${url}/imports/${ID}` },
              headers: { 'retry-after': '0' },
            }
          : { status: 200, body: final },
      );
      const run = await runCli(['import', '--endpoint', url, '--source', 'nginx:1.27'], env);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(expected);
      await new Promise((r) => server!.close(r));
      server = undefined;
    }
    const { url } = await serve(() => ({
      status: 400,
      body: { error: { code: 'UNKNOWN_CREDENTIAL', message: 'no credential named "x"', target: 'credential' } },
    }));
    const run = await runCli(['import', '--endpoint', url, '--source', 'nginx:1.27', '--credential', 'x'], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('oci-import: the service refused (400) [UNKNOWN_CREDENTIAL]: no credential named "x"\n');
  });

  it("sends the key to the endpoint's origin only: a status URL elsewhere is refused", async () => {
    const { url, seen } = await serve(() => ({
      status: 202,
      body: { id: ID, status: 'queued', statusUrl: `http://127.0.0.2:1/api/imports/${ID}` },
      headers: { 'retry-after': '0' },
    }));
    const run = await runCli(['import', '--endpoint', url, '--source', 'nginx:1.27'], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('[CROSS_ORIGIN_URL]');
    expect(seen).toHaveLength(1);
  });

  it('follows no redirect: a 3xx answer fails the command, and its Location gets no request (nor the key)', async () => {
    const elsewhere: string[] = [];
    const other = createServer((req, res) => {
      elsewhere.push(`${req.method} ${req.url} key=${String(req.headers['x-functions-key'])}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(view('succeeded')));
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    try {
      const { url, seen } = await serve(() => ({
        status: 307,
        headers: { location: `http://127.0.0.1:${(other.address() as AddressInfo).port}/api/imports/${ID}` },
      }));
      const run = await runCli(['status', ID, '--endpoint', url], env);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('[UNREACHABLE]');
      expect(run.stderr).toContain('answered 307, a redirect the client does not follow');
      expect(seen).toHaveLength(1);
      expect(elsewhere).toEqual([]);
    } finally {
      await new Promise((r) => other.close(r));
    }
  });

  it('reads an answer up to 8 MiB: a longer one fails the command as INVALID_ANSWER, the rest left unread', async () => {
    // a 200 whose body never ends: the client must stop on its own, and say why
    let written = 0;
    let closed = false;
    server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const piece = Buffer.alloc(64 * 1024, 0x20);
      const more = (): void => {
        while (!closed && written < 64 * 1024 * 1024) {
          written += piece.length;
          if (!res.write(piece)) return void res.once('drain', more);
        }
        res.end();
      };
      res.on('close', () => (closed = true));
      more();
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`;
    const run = await runCli(['status', ID, '--endpoint', url], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('[INVALID_ANSWER]');
    expect(run.stderr).toContain('answered more than 8 MiB');
    // what the server got out before the client closed: the 8 MiB read and what socket buffers held, not 64 MiB
    await expect.poll(() => closed).toBe(true);
    expect(written).toBeLessThan(24 * 1024 * 1024);
  });

  it('status, list (following nextLink up to --limit) and cancel, with --json', async () => {
    const { url, seen } = await serve((req) => {
      if (req.url.startsWith('/api/imports?')) {
        return req.url.includes('continuationToken')
          ? { status: 200, body: { value: [view('failed')] } }
          : {
              status: 200,
              body: {
                value: [view('running'), view('succeeded')],
                nextLink: `${url}/imports?limit=100&continuationToken=t`,
              },
            };
      }
      if (req.method === 'POST')
        return {
          status: 409,
          body: {
            error: { code: 'IMPORT_ENDED', message: 'ended already (succeeded)', target: 'id' },
            import: view('succeeded'),
          },
        };
      return { status: 200, body: view('running') };
    });
    const status = await runCli(['status', ID, '--endpoint', url], env);
    expect(status).toMatchObject({
      code: 0,
      stdout: expect.stringContaining(`${ID}  running\n  docker.io/library/nginx:1.27 → r.example/nginx:1.27\n`),
    });
    const list = await runCli(['list', '--endpoint', url, '--status', 'running,failed', '--limit', '3', '--json'], env);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { value: { status: string }[] }).value.map((v) => v.status)).toEqual([
      'running',
      'succeeded',
      'failed',
    ]);
    expect(seen.find((s) => s.url.startsWith('/api/imports?status='))!.url).toBe(
      '/api/imports?status=running%2Cfailed&limit=3',
    );
    const cancel = await runCli(['cancel', ID, '--endpoint', url, '--json'], env);
    expect(cancel.code).toBe(1);
    expect(JSON.parse(cancel.stdout)).toMatchObject({ id: ID, status: 'succeeded' });
    expect(cancel.stderr).toContain('[IMPORT_ENDED]');
  });

  it('refuses what does not fit an endpoint: --target, plain http off loopback, no endpoint', async () => {
    const target = await runCli(
      ['import', '--endpoint', 'https://app.example/api', '--source', 'nginx:1.27', '--target', 'r.example'],
      env,
    );
    expect(target).toMatchObject({ code: 2, stderr: expect.stringContaining('--target is for a local import') });
    const http = await runCli(['status', ID, '--endpoint', 'http://app.example/api'], env);
    expect(http).toMatchObject({ code: 2, stderr: expect.stringContaining('--endpoint must be an https URL') });
    const none = await runCli(['list'], {});
    expect(none).toMatchObject({ code: 2, stderr: expect.stringContaining('--endpoint is required') });
    const key = await runCli(['status', ID, '--endpoint', 'https://app.example/api', '--key', 'abc', 'extra'], {});
    expect(key).toMatchObject({ code: 2, stderr: expect.stringContaining('--key on the command line is visible') });
  });
});
