/**
 * Trust boundaries end to end, through the local host process on Azurite (issue 11, "done when"): a hostile
 * "public" registry allowed as a source, a named credential bound to another registry, writes confined to
 * `allowed/*`, and the sync timer pointed at a source whose tag list paginates to another origin.
 */
import { request as httpRequest } from 'node:http';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost, type HostProcess } from '../host/host-process.js';
import { startAzurite, type RunningAzurite } from '../support/azurite.js';
import { seedOneLayerImage as seedImage, startFakeRegistry, type FakeRegistry } from '../support/fake-registry.js';

const KEY = 'trust-e2e-key';
const HUB_SECRET = 'hub-Secret-Never-Leaves-7d2';
const INLINE_SECRET = 'inline-Secret-Sealed-5e1';

describe('trust boundaries through the local host', () => {
  let azurite: RunningAzurite;
  let own: FakeRegistry;
  let evil: FakeRegistry;
  let dst: FakeRegistry;
  let collector: Server;
  const collected: { url: string; headers: IncomingHttpHeaders }[] = [];
  let host: HostProcess | undefined;

  beforeAll(async () => {
    [azurite, own, evil, dst] = await Promise.all([
      startAzurite(),
      startFakeRegistry({ auth: { kind: 'basic', username: 'hubuser', password: HUB_SECRET } }),
      startFakeRegistry(),
      startFakeRegistry(),
    ]);
    collector = createServer((req, res) => {
      collected.push({ url: req.url ?? '', headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"tags":["x"]}');
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    const collectorUrl = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
    seedImage(own, 'team/app', '1');
    seedImage(evil, 'steal/x', '1');
    seedImage(evil, 'paged/app', 'v1');
    evil.faults.push({
      method: 'GET',
      path: /\/paged\/app\/tags\/list/,
      action: {
        kind: 'status',
        status: 200,
        headers: { Link: `<${collectorUrl}/v2/paged/app/tags/list?last=v1>; rel="next"` },
        body: '{"tags":["v1"]}',
      },
    });
    host = await startHost({
      args: ['--main', 'functions/*.ts', '--port', '0', '--no-azurite'],
      readyTimeoutMs: 60_000,
      env: {
        AzureWebJobsStorage: azurite.connectionString,
        IMPORT_QUEUE: 'trust',
        LOCAL_HOST_FUNCTION_KEY: KEY,
        LOCAL_HOST_QUEUE_LEASE_SECONDS: '3',
        TARGET_REGISTRY: dst.host,
        INSECURE_REGISTRIES: `${own.host},${evil.host},${dst.host}`,
        ALLOWED_SOURCES: `${own.host},${evil.host}`,
        TARGET_REPOSITORIES: 'allowed/*',
        CREDENTIAL_KEY: Buffer.alloc(32, 5).toString('base64'),
        REGISTRY_CREDENTIALS__hub__USERNAME: 'hubuser',
        REGISTRY_CREDENTIALS__hub__PASSWORD: HUB_SECRET,
        REGISTRY_CREDENTIALS__hub__REGISTRIES: own.host,
        SYNC_SCHEDULE: '*/2 * * * * *',
        SYNC_RULES: JSON.stringify([{ source: `${evil.host}/paged/app`, target: 'allowed/paged' }]),
      },
    });
  }, 120_000);

  afterAll(async () => {
    await host?.stop('SIGTERM');
    await Promise.all([
      azurite?.stop(),
      own?.close(),
      evil?.close(),
      dst?.close(),
      new Promise<void>((r) => {
        collector?.close(() => r());
        collector?.closeAllConnections();
      }),
    ]);
  });

  const post = (body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    fetch(`${host!.url}/api/imports`, {
      method: 'POST',
      headers: { 'x-functions-key': KEY, ...headers },
      body: JSON.stringify(body),
    });
  const code = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;
  const finished = async (id: string) => {
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
      const s = (await (
        await fetch(`${host!.url}/api/imports/${id}`, { headers: { 'x-functions-key': KEY } })
      ).json()) as { status: string; error?: { code: string } };
      if (s.status === 'succeeded' || s.status === 'failed') return s;
    }
    throw new Error(`import ${id} did not finish:\n${host!.output().slice(-3000)}`);
  };

  it('the named credential never reaches the hostile registry, and still works for its own', async () => {
    const refused = await post({ source: `${evil.host}/steal/x:1`, images: ['allowed/x:1'], credential: 'hub' });
    expect(refused.status).toBe(400);
    expect(await code(refused)).toBe('CREDENTIAL_NOT_ALLOWED');
    const ok = await post({ source: `${own.host}/team/app:1`, images: ['allowed/app:1'], credential: 'hub' });
    expect(ok.status).toBe(202);
    expect(await finished(((await ok.json()) as { id: string }).id)).toMatchObject({ status: 'succeeded' });
    expect(own.requests.some((r) => String(r.headers.authorization ?? '').startsWith('Basic '))).toBe(true);
    expect(evil.requests.filter((r) => r.headers.authorization !== undefined)).toEqual([]);
  });

  it('refuses a write outside TARGET_REPOSITORIES with a code naming the repository', async () => {
    const res = await post({ source: `${own.host}/team/app:1`, images: ['other/x:1'], credential: 'hub' });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; target: string; message: string } };
    expect(body.error).toMatchObject({ code: 'REPOSITORY_NOT_ALLOWED', target: 'images[0]' });
    expect(body.error.message).toContain('other/x');
  });

  it('a web page cannot drive it: text/plain 415, a foreign Origin 403, a rebinding Host 403', async () => {
    expect((await post({ source: `${own.host}/team/app:1` }, { 'content-type': 'text/plain' })).status).toBe(415);
    expect(
      (
        await post(
          { source: `${own.host}/team/app:1` },
          { 'content-type': 'application/json', origin: 'https://evil.example' },
        )
      ).status,
    ).toBe(403);
    const port = new URL(host!.url).port;
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          path: '/api/imports',
          method: 'POST',
          headers: { host: `rebind.evil.example:${port}`, 'content-type': 'application/json', 'x-functions-key': KEY },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify({ source: `${own.host}/team/app:1` }));
    });
    expect(status).toBe(403);
  });

  it('an inline password is sealed while the job runs and gone when it ends; none is in the poison queue', async () => {
    const res = await post({
      source: `${evil.host}/steal/x:1`,
      images: ['allowed/inline:1'],
      username: 'someone',
      password: INLINE_SECRET,
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    expect((await finished(id)).status).toBe('succeeded');
    const { BlobServiceClient } = await import('@azure/storage-blob');
    const { QueueServiceClient } = await import('@azure/storage-queue');
    const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient('importjobs');
    const names: string[] = [];
    for await (const b of container.listBlobsFlat({ prefix: `${id}/` })) names.push(b.name);
    expect(names).toContain(`${id}/job.json`);
    expect(names).not.toContain(`${id}/secret.json`);
    let stored = '';
    for (const name of names) stored += (await container.getBlobClient(name).downloadToBuffer()).toString('utf8');
    expect(stored).not.toContain(INLINE_SECRET);
    expect(stored).not.toContain('someone');
    const poison = QueueServiceClient.fromConnectionString(azurite.connectionString).getQueueClient('trust-poison');
    const peeked = await poison.peekMessages({ numberOfMessages: 32 }).catch(() => ({ peekedMessageItems: [] }));
    expect(JSON.stringify(peeked.peekedMessageItems)).not.toContain(
      Buffer.from(INLINE_SECRET).toString('base64').slice(0, 12),
    );
    expect(host!.output()).not.toContain(INLINE_SECRET);
    expect(host!.output()).not.toContain(HUB_SECRET);
  });

  it('the sync timer never calls a tag list Link on another origin, and reports it', async () => {
    let report: { errors: { code: string }[] } | undefined;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 500))) {
      const res = await fetch(`${host!.url}/api/syncs/latest`, { headers: { 'x-functions-key': KEY } });
      if (res.status === 200) {
        report = (await res.json()) as typeof report;
        break;
      }
    }
    expect(report?.errors.map((e) => e.code)).toContain('CROSS_ORIGIN_LINK');
    expect(collected).toEqual([]);
  });
});
