/**
 * The resume guard against the REAL registry (CNCF distribution 2.8): a saved upload session is continued only where
 * the registry's status answer (GET on the upload Location, `Range: 0-<last byte>`; distribution-spec "Get upload
 * status") confirms the saved offset. Any other answer — more bytes, fewer bytes, `0-0` — must cancel that session and
 * start a new one, never PATCH at the saved offset.
 *
 * Distribution pins the offset in each Location's `_state` and answers a stale Location with 404 before comparing
 * anything (engine.test.ts covers that path); here every saved Location is one distribution still accepts, with a
 * saved offset the session does not hold, so the comparison is the guard's alone. A proxy in front of the registry
 * logs every request; the blob is read back from the registry and compared byte for byte. Also: a queue step's first
 * write streamed as one PATCH without Content-Range (as `docker push`), ended by the step's budget, then continued by
 * the next step in Content-Range chunks of the same session.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFarProxy, type FarProxy } from '../../scripts/bench/far-proxy.js';
import { copyBlob, initialBlobState, type CopyBlobOptions } from '../../lib/engine/copy-blob.js';
import { PartPool } from '../../lib/engine/part-reader.js';
import type { BlobState } from '../../lib/engine/types.js';
import type { Digest } from '../../lib/oci/digest.js';
import { RegistryClient } from '../../lib/oci/registry.js';
import { seedOneLayerImage, startFakeRegistry, type FakeRegistry } from '../support/fake-registry.js';
import { blobStep, testService } from '../support/service.js';
import { requireRegistryTools, startRegistry, type RunningRegistry } from '../support/registry.js';

const hasTools = requireRegistryTools();
const KiB = 1024;
const retry = { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20 };

describe.skipIf(!hasTools)('resuming an upload on distribution 2.8: only at an offset its status confirms', () => {
  let registry: RunningRegistry;
  let proxy: FarProxy;
  let src: FakeRegistry;
  const blob = Buffer.alloc(64 * KiB + 100);
  for (let i = 0; i < blob.length; i++) blob[i] = (i * 7919) % 251;
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}` as Digest;

  beforeAll(async () => {
    [registry, src] = await Promise.all([startRegistry(), startFakeRegistry()]);
    proxy = await startFarProxy({ target: registry.host, latencyMs: 0, bytesPerSecond: 1e12 });
    src.putBlob('team/app', blob);
  });
  afterAll(async () => {
    await proxy?.close();
    await Promise.all([registry?.stop(), src?.close()]);
  });

  const target = () => new RegistryClient({ registry: proxy.host, insecure: true, retry, side: 'target' });
  const options = (): CopyBlobOptions => ({
    source: new RegistryClient({ registry: src.host, insecure: true, retry, side: 'source' }),
    sourceRepository: 'team/app',
    target: target(),
    mountFrom: [],
    chunkSize: 16 * KiB,
    fetchConcurrency: 2,
    partPool: new PartPool(4),
    partSize: 16 * KiB,
    sessionRetry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20 },
  });
  /** One chunk more of the upload: each state carries the Location distribution expects next. */
  const step = async (s: BlobState) => copyBlob(s, { until: 0, maxChunks: 1 }, options());

  it('a stale Location is refused with 404 BLOB_UPLOAD_INVALID and changes nothing: the newest goes on (as in the fake registry)', async () => {
    const base = `http://${registry.host}`;
    const loc = (r: Response) => new URL(r.headers.get('location')!, base).toString();
    const patch = (u: string, from: number, fill: number) =>
      fetch(u, {
        method: 'PATCH',
        body: Buffer.alloc(4, fill),
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${from}-${from + 3}` },
      });
    const loc0 = loc(await fetch(`${base}/v2/stale/app/blobs/uploads/`, { method: 'POST' }));
    const loc1 = loc(await patch(loc0, 0, 1));
    const loc2 = loc(await patch(loc1, 4, 2));
    for (const stale of [await patch(loc1, 4, 2), await fetch(loc0), await fetch(loc1, { method: 'DELETE' })]) {
      expect(stale.status).toBe(404);
      const { errors } = (await stale.json()) as { errors: { code: string }[] };
      expect(errors.map((e) => e.code)).toEqual(['BLOB_UPLOAD_INVALID']);
    }
    const kept = await fetch(loc2);
    expect(kept.status).toBe(204);
    expect(kept.headers.get('range')).toBe('0-7');
    const next = await patch(loc2, 8, 3);
    expect(next.status).toBe(202);
    expect(next.headers.get('range')).toBe('0-11');
    expect((await fetch(loc(next), { method: 'DELETE' })).status).toBe(204);
  });

  it.each([
    ['more bytes than saved (0-32767 for 16384: its next chunk landed, its checkpoint did not)', 'more'],
    ['fewer bytes than saved (0-32767 for 49152)', 'fewer'],
    ['`0-0` for 16384 (a Location of a session that holds nothing)', 'empty'],
  ] as const)(
    'status answers %s: the session is deleted, a new one posted, no PATCH on the old one',
    async (_name, kind) => {
      const repository = `resume/${kind}`;
      const one = await step(initialBlobState({ digest, size: blob.length }, repository));
      const two = await step(one);
      const fresh = await target().startUpload(repository);
      if (one.phase !== 'uploading' || two.phase !== 'uploading') throw new Error('expected uploads in progress');
      const saved: BlobState =
        kind === 'more'
          ? { ...one, location: two.location }
          : kind === 'fewer'
            ? { ...two, offset: 48 * KiB }
            : { ...one, location: fresh.location };
      const oldSession = new URL(saved.location).pathname;
      const from = proxy.stats.log.length;

      const done = await copyBlob(saved, { until: Date.now() + 60_000 }, options());

      expect(done).toMatchObject({ phase: 'done', outcome: 'copied', sessions: saved.sessions + 1 });
      const log = proxy.stats.log.slice(from);
      // distribution answered the status with a range (204), not with its stale-state 404: the guard decided
      expect(log.filter((r) => r.path.startsWith(oldSession)).map((r) => `${r.method} ${r.status}`)).toEqual([
        'GET 204',
        'DELETE 204',
      ]);
      expect(
        log
          .filter((r) => r.method !== 'HEAD' && r.method !== 'GET')
          .map((r) => r.method)
          .slice(0, 2),
      ).toEqual(['DELETE', 'POST']);
      expect(
        log
          .filter((r) => r.method === 'PATCH' || r.method === 'PUT')
          .every((r) => r.status !== undefined && r.status < 300),
      ).toBe(true);
      const stored = Buffer.from(
        await (await fetch(`http://${registry.host}/v2/${repository}/blobs/${digest}`)).arrayBuffer(),
      );
      expect(stored.equals(blob)).toBe(true);
    },
  );

  it("takes a queue step's streamed first write, ended by the budget, and the next step's chunks in the same session", async () => {
    const repository = 'resume/streamed';
    // 5 parts of 16 KiB, one at a time, each 400 ms late: the 1 s budget ends the stream after two or three
    src.faults.push({ method: 'GET', path: /\/blobs\//, action: { kind: 'delay', ms: 400 } });
    const from = proxy.stats.log.length;
    let first: BlobState;
    try {
      first = await copyBlob(
        initialBlobState({ digest, size: blob.length }, repository),
        { until: Date.now() + 1000 },
        { ...options(), fetchConcurrency: 1, streamFirstWrite: true },
      );
    } finally {
      src.faults.length = 0;
    }
    if (first.phase !== 'uploading') throw new Error(`expected an upload in progress, got ${first.phase}`);
    expect(first.offset % (16 * KiB)).toBe(0);
    expect(first.offset).toBeGreaterThan(0);
    expect(first.offset).toBeLessThan(blob.length);

    const done = await copyBlob(first, { until: Date.now() + 60_000 }, { ...options(), streamFirstWrite: true });

    // one session: distribution confirmed the streamed bytes (status 204) and took the chunks after them
    expect(done).toMatchObject({ phase: 'done', outcome: 'copied', sessions: first.sessions });
    const log = proxy.stats.log.slice(from);
    expect(log.filter((r) => r.method === 'POST').length).toBe(1);
    expect(log.filter((r) => r.method === 'DELETE')).toEqual([]);
    const writes = log.filter((r) => r.method === 'PATCH' || r.method === 'PUT');
    expect(writes.map((r) => r.method)).toEqual([
      'PATCH',
      ...Array<string>(Math.ceil((blob.length - first.offset) / (16 * KiB)) - 1).fill('PATCH'),
      'PUT',
    ]);
    expect(writes.every((r) => r.status !== undefined && r.status < 300)).toBe(true);
    const stored = Buffer.from(
      await (await fetch(`http://${registry.host}/v2/${repository}/blobs/${digest}`)).arrayBuffer(),
    );
    expect(stored.equals(blob)).toBe(true);
  });

  it('a streamed first write stopped by its signal (a cancel) ends at a block, and its answer can still cancel the session', async () => {
    const repository = 'resume/stopped';
    // parts of 16 KiB, one at a time, each 400 ms late: two or so are on the wire when the stop comes
    src.faults.push({ method: 'GET', path: /\/blobs\//, action: { kind: 'delay', ms: 400 } });
    const states: BlobState[] = [];
    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(), 1000);
    try {
      await expect(
        copyBlob(
          initialBlobState({ digest, size: blob.length }, repository),
          { until: Date.now() + 60_000, signal: stop.signal },
          {
            ...options(),
            fetchConcurrency: 1,
            streamFirstWrite: true,
            checkpoint: async (s) => {
              states.push(s);
            },
          },
        ),
      ).rejects.toThrow();
    } finally {
      clearTimeout(timer);
      src.faults.length = 0;
    }
    // the PATCH was answered: its Location holds what was sent (an aborted one leaves only the first, now stale)
    const last = states.at(-1)!;
    if (last.phase !== 'uploading') throw new Error(`expected an upload in progress, got ${last.phase}`);
    expect(last.offset).toBeGreaterThan(0);
    expect(last.offset % (16 * KiB)).toBe(0);
    expect(await target().uploadStatus(repository, last.location)).toMatchObject({ size: last.offset });
    // distribution keeps a session as _uploads/<uuid>/{startedat,data}; its DELETE removes both (an empty
    // hashstates/ folder may stay: distribution/distribution#1697)
    const uploads = join(registry.dir, 'data', 'docker', 'registry', 'v2', 'repositories', repository, '_uploads');
    const live = () =>
      existsSync(uploads)
        ? readdirSync(uploads, { recursive: true }).filter((f) => /(^|\/)(startedat|data)$/.test(String(f)))
        : [];
    expect(live()).toHaveLength(2);
    await target().cancelUpload(last.location);
    expect(live()).toEqual([]);
  });

  it('an import canceled while its blob step streams (CHUNK_SIZE not set) leaves no upload session behind', async () => {
    // a 12 MiB layer (more than one 4 MiB part: not one PUT) from a source at 2 MB/s: its step streams the
    // session's first write for about 6 s
    const layer = Buffer.alloc(12 * 1024 * KiB, 5);
    seedOneLayerImage(src, 'team/slow', '1', layer);
    const slow = await startFarProxy({ target: src.host, latencyMs: 0, bytesPerSecond: 2_000_000 });
    try {
      const t = testService({
        TARGET_REGISTRY: proxy.host,
        INSECURE_REGISTRIES: `${slow.host},${proxy.host}`,
        ALLOWED_SOURCES: slow.host,
        STEP_BUDGET_SECONDS: '60',
      });
      const job = await t.service.submit({ source: `${slow.host}/team/slow:1`, images: ['canceled/slow:1'] }, 'http');
      await t.service.handleMessage(t.queue.drain()[0]!, t.meta()); // plan
      const step = blobStep(t.queue.drain().find((m) => m.step === 'blob' && m.size === layer.length));
      const uploads = join(
        registry.dir,
        'data',
        'docker',
        'registry',
        'v2',
        'repositories',
        'canceled',
        'slow',
        '_uploads',
      );
      const data = () =>
        existsSync(uploads)
          ? readdirSync(uploads, { recursive: true })
              .map(String)
              .filter((f) => /(^|\/)data$/.test(f))
          : [];
      const running = t.service.handleMessage(step, t.meta());
      // the cancel comes once the stream has carried a block (1 MiB) into the session
      for (const deadline = Date.now() + 20_000; !data().some((f) => statSync(join(uploads, f)).size >= 1024 * KiB);) {
        if (Date.now() > deadline) throw new Error('the layer never reached the target');
        await new Promise((r) => setTimeout(r, 20));
      }
      expect((await t.service.cancel(job.id)).kind).toBe('canceled');
      await running; // a cancel is no failure of the step
      const log = proxy.stats.log.filter((r) => r.path.startsWith('/v2/canceled/slow/blobs/uploads/'));
      expect(log.map((r) => r.method)).toEqual(['POST', 'PATCH', 'DELETE']); // the stream, then the cancel
      expect(data()).toEqual([]);
      expect(await t.service.status(job.id)).toMatchObject({ status: 'canceled' });
    } finally {
      await slow.close();
    }
  });
});
