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
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFarProxy, type FarProxy } from '../../scripts/bench/far-proxy.js';
import { copyBlob, initialBlobState, type CopyBlobOptions } from '../../lib/engine/copy-blob.js';
import { PartPool } from '../../lib/engine/part-reader.js';
import type { BlobState } from '../../lib/engine/types.js';
import type { Digest } from '../../lib/oci/digest.js';
import { RegistryClient } from '../../lib/oci/registry.js';
import { startFakeRegistry, type FakeRegistry } from '../support/fake-registry.js';
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
});
