/**
 * Bounded work end to end, through the local host process on Azurite (issue 12, "done when"): a hostile
 * source's 1,500-layer manifest fails TOO_MANY_BLOBS with the queue never above a few messages, and
 * Retry-After is waited (1 s), turned into a delayed step with status `waiting` (300 s), or refused at once
 * with RATE_LIMITED (999999 s).
 */
import { createHash } from 'node:crypto';
import { QueueServiceClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost, type HostProcess } from '../host/host-process.js';
import { startAzurite, type RunningAzurite } from '../support/azurite.js';
import { startFakeRegistry, type FakeRegistry } from '../support/fake-registry.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const KEY = 'bounds-e2e-key';
const sha = (b: string | Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** An image of `layers` small layers; stored only when `store` (a plan never reads them). */
function seedImage(reg: FakeRegistry, repo: string, tag: string, layers: number, store: boolean): string {
  const config = Buffer.from(`{"architecture":"amd64","os":"linux","n":${layers}}`);
  return reg.putManifest(
    repo,
    tag,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: reg.putBlob(repo, config),
          size: config.length,
        },
        layers: Array.from({ length: layers }, (_, i) => {
          const data = Buffer.from(`layer ${i} of ${repo}:${tag}`);
          return {
            mediaType: 'application/vnd.oci.image.layer.v1.tar',
            digest: store ? reg.putBlob(repo, data) : sha(data),
            size: data.length,
          };
        }),
      }),
    ),
    OCI_MANIFEST,
  );
}

interface Status {
  status: string;
  waitingUntil?: string;
  error?: { code: string; message: string };
}

describe('bounded work through the local host', () => {
  let azurite: RunningAzurite;
  let evil: FakeRegistry;
  let dst: FakeRegistry;
  let host: HostProcess | undefined;

  beforeAll(async () => {
    [azurite, evil, dst] = await Promise.all([startAzurite(), startFakeRegistry(), startFakeRegistry()]);
    seedImage(evil, 'bomb/app', '1', 1500, false);
    for (const tag of ['short', 'later', 'never']) seedImage(evil, 'limited/app', tag, 2, true);
    evil.faults.push(
      {
        method: 'GET',
        path: /\/limited\/app\/manifests\/short$/,
        times: 1,
        action: { kind: 'status', status: 429, headers: { 'Retry-After': '1' } },
      },
      {
        method: 'GET',
        path: /\/limited\/app\/manifests\/later$/,
        action: { kind: 'status', status: 429, headers: { 'Retry-After': '300' } },
      },
      {
        method: 'GET',
        path: /\/limited\/app\/manifests\/never$/,
        action: { kind: 'status', status: 503, headers: { 'Retry-After': '999999' } },
      },
    );
    host = await startHost({
      args: ['--main', 'functions/*.ts', '--port', '0', '--no-azurite'],
      readyTimeoutMs: 60_000,
      env: {
        AzureWebJobsStorage: azurite.connectionString,
        IMPORT_QUEUE: 'bounds',
        LOCAL_HOST_FUNCTION_KEY: KEY,
        LOCAL_HOST_QUEUE_LEASE_SECONDS: '3',
        TARGET_REGISTRY: dst.host,
        INSECURE_REGISTRIES: `${evil.host},${dst.host}`,
        ALLOWED_SOURCES: evil.host,
      },
    });
  }, 120_000);

  afterAll(async () => {
    await host?.stop('SIGTERM');
    await Promise.all([azurite?.stop(), evil?.close(), dst?.close()]);
  });

  const post = async (body: unknown): Promise<string> => {
    const res = await fetch(`${host!.url}/api/imports`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-functions-key': KEY },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(202);
    return ((await res.json()) as { id: string }).id;
  };
  const status = async (id: string) =>
    (await (await fetch(`${host!.url}/api/imports/${id}`, { headers: { 'x-functions-key': KEY } })).json()) as Status;
  const until = async (
    id: string,
    done: (s: Status) => boolean,
    timeoutMs: number,
    each?: () => Promise<void>,
  ): Promise<Status> => {
    for (const deadline = Date.now() + timeoutMs; ; await new Promise((r) => setTimeout(r, 100))) {
      await each?.();
      const s = await status(id);
      if (done(s)) return s;
      if (Date.now() > deadline)
        throw new Error(`import ${id} is still ${JSON.stringify(s)}\n${host!.output().slice(-3000)}`);
    }
  };

  it('a 1,500-layer manifest fails TOO_MANY_BLOBS, the queue never above a few messages', async () => {
    const queue = QueueServiceClient.fromConnectionString(azurite.connectionString).getQueueClient('bounds');
    let peak = 0;
    const id = await post({ source: `${evil.host}/bomb/app:1`, images: ['bomb:1'] });
    const s = await until(
      id,
      (x) => x.status === 'failed' || x.status === 'succeeded',
      30_000,
      async () => {
        const props = await queue.getProperties();
        peak = Math.max(peak, props.approximateMessagesCount ?? 0);
      },
    );
    expect(s).toMatchObject({
      status: 'failed',
      error: { code: 'TOO_MANY_BLOBS', message: expect.stringContaining('MAX_BLOBS') },
    });
    expect(peak).toBeLessThanOrEqual(3);
    expect(evil.requests.filter((r) => r.url.includes('/blobs/'))).toEqual([]);
  });

  it('Retry-After: 1 s is waited; 300 s makes the import wait (status waiting); 999999 s fails RATE_LIMITED within seconds', async () => {
    const short = await post({ source: `${evil.host}/limited/app:short`, images: ['limited:short'] });
    const later = await post({ source: `${evil.host}/limited/app:later`, images: ['limited:later'] });
    const t0 = Date.now();
    const never = await post({ source: `${evil.host}/limited/app:never`, images: ['limited:never'] });
    const refused = await until(never, (x) => x.status === 'failed', 30_000);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(refused.error).toMatchObject({
      code: 'RATE_LIMITED',
      message: expect.stringMatching(/MAX_RETRY_AFTER_SECONDS \(3600 s\): import again after 20\d\d-/),
    });
    expect(await until(short, (x) => x.status === 'succeeded', 30_000)).toMatchObject({ status: 'succeeded' });
    const waiting = await until(later, (x) => x.status === 'waiting', 30_000);
    expect(Date.parse(waiting.waitingUntil!) - Date.now()).toBeGreaterThan(200_000);
  });
});
