/**
 * The queue as a trust boundary, end to end through the local host process on Azurite (issue 22): whoever may drop
 * import requests on the queue writes step messages for a running victim import — a blob of another repository,
 * 200 GiB, with the victim's sealed credentials; an early finalize; a fan-out past the plan — straight onto the
 * queue and onto its poison queue. None of them sends a request or changes the victim's job, each is kept as a
 * reason; the victim import then completes as planned. The host makes its own MESSAGE_KEY.
 * And a password-only (Entra ID token) source whose `/v2/` never answers ends its step as TIMEOUT within its budget
 * and a request timeout — the worker process is not restarted.
 */
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost, type HostProcess } from '../host/host-process.js';
import { startAzurite, type RunningAzurite } from '../support/azurite.js';
import { startFakeRegistry, type FakeRegistry } from '../support/fake-registry.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const KEY = 'queue-trust-e2e-key';
const QUEUE = 'forged';
const USER = 'victim';
const PASSWORD = 'victim-Source-Password-3c9';

interface Status {
  status: string;
  finalizing?: true;
  digest?: string;
  progress: { blobsDone: number; blobsTotal: number };
  error?: { code: string };
}

describe('forged queue messages through the local host', () => {
  let azurite: RunningAzurite;
  let src: FakeRegistry;
  let dst: FakeRegistry;
  let silent: TcpServer;
  const sockets: Socket[] = [];
  let host: HostProcess | undefined;
  let layer: string;
  let secretDigest: string;
  let digest: string;

  beforeAll(async () => {
    [azurite, src, dst] = await Promise.all([
      startAzurite(),
      startFakeRegistry({ auth: { kind: 'basic', username: USER, password: PASSWORD } }),
      startFakeRegistry(),
    ]);
    silent = createTcpServer((s) => {
      sockets.push(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const data = Buffer.alloc(300_000, 3);
    layer = src.putBlob('team/app', data);
    secretDigest = src.putBlob('team/private', Buffer.from('a private layer the victim never asked for'));
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    digest = src.putManifest(
      'team/app',
      '1',
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: {
            mediaType: 'application/vnd.oci.image.config.v1+json',
            digest: src.putBlob('team/app', config),
            size: config.length,
          },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: data.length }],
        }),
      ),
      OCI_MANIFEST,
    );
    const silentHost = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
    host = await startHost({
      args: ['--main', 'functions/*.ts', '--port', '0', '--no-azurite'],
      readyTimeoutMs: 60_000,
      env: {
        AzureWebJobsStorage: azurite.connectionString,
        IMPORT_QUEUE: QUEUE,
        LOCAL_HOST_FUNCTION_KEY: KEY,
        LOCAL_HOST_QUEUE_LEASE_SECONDS: '5',
        TARGET_REGISTRY: dst.host,
        INSECURE_REGISTRIES: `${src.host},${dst.host},${silentHost}`,
        ALLOWED_SOURCES: `${src.host},${silentHost}`,
        CREDENTIAL_KEY: Buffer.alloc(32, 6).toString('base64'),
        INLINE_IMPORT_BYTES: '0',
        CHUNK_SIZE: '64KiB',
        STEP_BUDGET_SECONDS: '2',
        REQUEST_TIMEOUT_SECONDS: '2',
        MESSAGE_KEY: undefined,
        // two deliveries, the second at once: the silent source's import fails within a minute
        AzureFunctionsJobHost__extensions__queues__maxDequeueCount: '2',
        AzureFunctionsJobHost__extensions__queues__visibilityTimeout: '00:00:00',
      },
    });
  }, 120_000);

  afterAll(async () => {
    await host?.stop('SIGTERM');
    for (const s of sockets) s.destroy();
    await Promise.all([
      azurite?.stop(),
      src?.close(),
      dst?.close(),
      new Promise<void>((r) => {
        silent?.close(() => r());
      }),
    ]);
  });

  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${host!.url}/api/${path}`, { ...init, headers: { 'x-functions-key': KEY, ...init.headers } });
  const status = async (id: string) => (await (await api(`imports/${id}`)).json()) as Status;
  const until = async <T>(probe: () => Promise<T | undefined>, what: string, ms = 60_000): Promise<T> => {
    for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
      const v = await probe();
      if (v !== undefined) return v;
    }
    throw new Error(`timed out waiting for ${what}:\n${host!.output().slice(-4000)}`);
  };
  const container = () =>
    BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient('importjobs');
  const poisoned = async (): Promise<{ reason: string }[]> => {
    const out: { reason: string }[] = [];
    for await (const b of container().listBlobsFlat({ prefix: 'poisoned/' }))
      out.push(
        JSON.parse((await container().getBlobClient(b.name).downloadToBuffer()).toString('utf8')) as { reason: string },
      );
    return out;
  };
  const drop = async (queue: string, message: unknown) => {
    const client = QueueServiceClient.fromConnectionString(azurite.connectionString).getQueueClient(queue);
    await client.createIfNotExists();
    await client.sendMessage(Buffer.from(JSON.stringify(message)).toString('base64'));
  };

  it('step messages the app did not write send nothing and leave a running victim import as it was', async () => {
    // the victim's layer answers slowly: its blob step is still copying while the forged messages arrive
    src.faults.push({ method: 'GET', path: new RegExp(`/blobs/${layer}`), action: { kind: 'delay', ms: 1500 } });
    const res = await api('imports', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ source: `${src.host}/team/app:1`, images: ['app:1'], username: USER, password: PASSWORD }),
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    await until(async () => ((await status(id)).status === 'running' ? true : undefined), 'the victim import to run');
    const before = {
      requests: src.requests.length,
      secret: src.requests.filter((r) => r.url.includes('team/private')).length,
    };

    await drop(QUEUE, { v: 1, job: id, step: 'blob', blob: 0, digest: secretDigest, size: 200 * 1024 ** 3 });
    await drop(QUEUE, { v: 1, job: id, step: 'blob', blob: 7, digest: layer, size: 300_000 });
    await drop(QUEUE, { v: 1, job: id, step: 'finalize' });
    await drop(QUEUE, { v: 1, job: id, step: 'fanout', from: 64, mac: 'A'.repeat(43) });
    await drop(`${QUEUE}-poison`, { v: 1, job: id, step: 'plan' });
    const reasons = await until(async () => {
      const p = await poisoned();
      return p.length >= 5 ? p.map((r) => r.reason) : undefined;
    }, 'five poison records');
    expect(reasons).toEqual(Array(5).fill('STEP_NOT_AUTHENTIC'));

    const view = await status(id);
    expect(['running', 'succeeded']).toContain(view.status);
    expect(view.error).toBeUndefined();
    expect(src.requests.filter((r) => r.url.includes('team/private')).length).toBe(before.secret);
    expect(dst.getBlob(secretDigest)).toBeUndefined();
    expect(host!.output()).toMatch(/a blob message naming job [0-9a-f-]+ was refused \[STEP_NOT_AUTHENTIC\]/);

    src.faults.length = 0;
    const done = await until(async () => {
      const s = await status(id);
      return s.status === 'succeeded' || s.status === 'failed' ? s : undefined;
    }, 'the victim import to end');
    expect(done).toMatchObject({ status: 'succeeded', digest, progress: { blobsDone: 2, blobsTotal: 2 } });
    expect(host!.output()).toMatch(
      /step messages authenticated with MESSAGE_KEY (made and kept in|read from) .*\.local-host\/message-key/,
    );
  });

  it('a password-only source whose /v2/ never answers: each delivery ends as TIMEOUT within its deadline (attempts of one request timeout), the job fails TIMEOUT, the worker is not restarted', async () => {
    const statusOf = async () =>
      (await (await fetch(`${host!.url}/admin/host/status`)).json()) as { worker: { pid: number; restarts: number } };
    const worker = (await statusOf()).worker;
    const silentHost = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const res = await api('imports', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        source: `${silentHost}/team/app:1`,
        images: ['silent:1'],
        password: 'eyJhbGciOiJub25lIn0.e30.sig',
      }),
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const started = Date.now();
    // each delivery ends within its budget and margin (the probe's attempts end at the 2 s request timeout each)
    const failed = await until(
      async () => {
        const s = await status(id);
        return s.status === 'failed' ? s : undefined;
      },
      'the silent import to fail',
      100_000,
    );
    process.stdout.write(
      `[silent /v2/ through the host] failed ${failed.error?.code} after ${Date.now() - started} ms, ${sockets.length} connection(s) held\n`,
    );
    expect(failed.error?.code).toBe('TIMEOUT');
    // each delivery: the sign-in's own 5 attempts of one request timeout each, not retried again per request
    expect(sockets.length).toBeGreaterThanOrEqual(2);
    expect(sockets.length).toBeLessThanOrEqual(2 * 5);
    // two deliveries, each ended by its deadline at the latest (budget 2 s + the step margin of 30 s)
    expect(Date.now() - started).toBeLessThan(2 * (2_000 + 30_000));
    expect((await statusOf()).worker).toMatchObject({ pid: worker.pid, restarts: worker.restarts });
  }, 120_000);
});
