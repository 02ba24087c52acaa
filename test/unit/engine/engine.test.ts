/**
 * The engine against the in-process fake registry: resumable steps, and every fault the real world
 * throws at a copier (ignored ranges, short bodies, lost PATCH answers, 429s, redirects to storage).
 * The same behaviours that concern interop are also tested against the real registry
 * (test/integration).
 */
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HEARTBEAT_MS } from '../../../lib/engine/copy-blob.js';
import { ImportEngine, runImport } from '../../../lib/engine/engine.js';
import { PartPool } from '../../../lib/engine/part-reader.js';
import { bytesPresent, type BlobState, type ImportPlan } from '../../../lib/engine/types.js';
import { RegistryClient } from '../../../lib/oci/registry.js';
import { startFakeRegistry, type FakeRegistry, type FakeRegistryOptions } from '../../support/fake-registry.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const KiB = 1024;
const fastRetry = { maxAttempts: 5, baseDelayMs: 5, maxDelayMs: 50 };
const LIMITS = { maxManifests: 50, maxBlobs: 1000, maxImportBytes: 2 ** 40 };

function randomBlob(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(String(seed)).digest();
  for (let i = 0; i < size; i += 32) {
    block.copy(out, i, 0, Math.min(32, size - i));
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** Puts a one-layer image into the fake and returns its digest and the layer. */
function seedImage(reg: FakeRegistry, repo: string, tag: string, layerSize: number, seed = 1) {
  const layer = randomBlob(layerSize, seed);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, seed }),
  );
  const layerDigest = reg.putBlob(repo, layer);
  const configDigest = reg.putBlob(repo, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
    }),
  );
  const digest = reg.putManifest(repo, tag, manifest, OCI_MANIFEST);
  return { digest, layer, layerDigest };
}

describe('import engine (fake registries)', () => {
  let src: FakeRegistry;
  let dst: FakeRegistry;
  const engineFor = (chunkSize = 16 * KiB, fetchConcurrency = 3, notices: string[] = []) =>
    new ImportEngine({
      source: new RegistryClient({ registry: src.host, insecure: true, retry: fastRetry }),
      target: new RegistryClient({ registry: dst.host, insecure: true, retry: fastRetry }),
      chunkSize,
      fetchConcurrency,
      ...LIMITS,
      events: { onNotice: (m) => notices.push(m) },
    });
  /** A queue step's engine (a new session's first write streamed), reading 64 KiB parts one at a time, chunks of 16 KiB after. */
  const streamingEngine = (partPool?: PartPool) =>
    new ImportEngine({
      ...(partPool ? { partPool } : {}),
      source: new RegistryClient({ registry: src.host, insecure: true, retry: fastRetry }),
      target: new RegistryClient({ registry: dst.host, insecure: true, retry: fastRetry }),
      chunkSize: 16 * KiB,
      streamFirstWrite: true,
      fetchConcurrency: 1,
      partSize: 64 * KiB,
      partGrowth: 1,
      ...LIMITS,
    });
  const start = async (srcOpts: FakeRegistryOptions = {}, dstOpts: FakeRegistryOptions = {}) => {
    [src, dst] = await Promise.all([startFakeRegistry(srcOpts), startFakeRegistry(dstOpts)]);
  };
  const copyAll = async (engine: ImportEngine, plan: ImportPlan): Promise<BlobState[]> => {
    const out: BlobState[] = [];
    for (let s of ImportEngine.blobStates(plan, plan.target.refs[0]!.repository)) {
      while (s.phase !== 'done') s = await engine.copyBlob(plan, s, { until: Date.now() + 60_000 });
      out.push(s);
    }
    return out;
  };
  const importAll = async (engine: ImportEngine, tag = 'app:1') => {
    const plan = await engine.plan({ source: `${src.host}/team/app:1`, target: dst.host, images: [tag] });
    const blobs = await copyAll(engine, plan);
    return { plan, blobs, result: await engine.finalize(plan) };
  };

  beforeEach(() => undefined);
  afterEach(async () => {
    await Promise.all([src?.close(), dst?.close()]);
  });

  it('stops after every chunk, serialises its state, and finishes from fresh engines', async () => {
    await start();
    const { digest, layer, layerDigest } = seedImage(src, 'team/app', '1', 100 * KiB + 123);
    let plan = JSON.parse(
      JSON.stringify(await engineFor().plan({ source: `${src.host}/team/app:1`, target: dst.host, images: ['app:1'] })),
    ) as ImportPlan;
    let steps = 0;
    for (const initial of ImportEngine.blobStates(plan, 'app')) {
      let json = JSON.stringify(initial);
      while ((JSON.parse(json) as BlobState).phase !== 'done') {
        // a new engine (new clients, new token caches) for every step, as a new queue message would get
        const next = await engineFor().copyBlob(plan, JSON.parse(json) as BlobState, {
          until: Date.now() + 60_000,
          maxChunks: 1,
        });
        json = JSON.stringify(next);
        steps++;
        plan = JSON.parse(JSON.stringify(plan)) as ImportPlan;
      }
    }
    // 100 KiB + 123 bytes in 16 KiB chunks is 7 chunks: 6 PATCH steps, the last one with the final PUT
    expect(steps).toBeGreaterThanOrEqual(7);
    const patches = dst.requests.filter((r) => r.method === 'PATCH');
    expect(patches.length).toBe(6);
    expect(Buffer.from(dst.getBlob(layerDigest)!).equals(layer)).toBe(true);
    const result = await engineFor().finalize(plan);
    expect(result.digest).toBe(digest);
    expect(dst.getManifest('app', '1')?.digest).toBe(digest);
  });

  it("streams a new session's first write as one PATCH ended by the step's budget (also while a slow source keeps it waiting), then goes on in chunks", async () => {
    await start();
    const { digest, layer, layerDigest } = seedImage(src, 'team/app', '1', 512 * KiB + 123);
    // 9 parts of 64 KiB, one at a time, each 600 ms late: the budget (900 ms) ends while the second one is awaited
    src.faults.push({ method: 'GET', path: /\/blobs\//, action: { kind: 'delay', ms: 600 } });
    const partPool = new PartPool(2, 16 * 1024 * KiB);
    const engine = streamingEngine(partPool);
    const plan = await engine.plan({ source: `${src.host}/team/app:1`, target: dst.host, images: ['app:1'] });
    const initial = ImportEngine.blobStates(plan, 'app').find((b) => b.digest === layerDigest)!;
    const began = Date.now();
    const first = await engine.copyBlob(plan, initial, { until: began + 900 });
    const took = Date.now() - began;
    // ended with the budget (900 ms), not when the next part came (1.2 s)
    expect(took).toBeLessThan(1100);
    expect(first.phase).toBe('uploading');
    const sentFirst = bytesPresent(first);
    expect(sentFirst % (64 * KiB)).toBe(0);
    expect(sentFirst).toBeGreaterThanOrEqual(64 * KiB);
    expect(sentFirst).toBeLessThan(layer.length);
    const streamed = dst.requests.filter((r) => r.method === 'PATCH');
    expect(streamed).toHaveLength(1);
    expect(streamed[0]!.headers['content-range']).toBeUndefined();
    expect(streamed[0]!.bodyLength).toBe(sentFirst);
    // every block went back to the pool, the part still awaited when the budget ended included (a worker's pool serves every step it runs)
    await new Promise((r) => setTimeout(r, 700));
    expect(partPool.heldBlocks).toBe(0);

    // the next step continues the session in CHUNK_SIZE PATCHes (a stream is taken only as a session's first write)
    src.faults.length = 0;
    let s: BlobState = JSON.parse(JSON.stringify(first)) as BlobState;
    while (s.phase !== 'done') s = await engine.copyBlob(plan, s, { until: Date.now() + 60_000 });
    const chunks = dst.requests.filter((r) => r.method === 'PATCH').slice(1);
    expect(chunks.length).toBe(Math.ceil((layer.length - sentFirst) / (16 * KiB)) - 1);
    for (const c of chunks) expect(c.headers['content-range']).toMatch(/^\d+-\d+$/);
    expect(Buffer.from(dst.getBlob(layerDigest)!).equals(layer)).toBe(true);
    for (let c of ImportEngine.blobStates(plan, 'app').filter((b) => b.digest !== layerDigest))
      while (c.phase !== 'done') c = await engine.copyBlob(plan, c, { until: Date.now() + 60_000 });
    expect((await engine.finalize(plan)).digest).toBe(digest);
  });

  it('streams the whole blob in one PATCH when the budget allows, with a heartbeat at most every HEARTBEAT_MS', async () => {
    await start();
    const { layer, layerDigest } = seedImage(src, 'team/app', '1', 512 * KiB + 123);
    src.faults.push({ method: 'GET', path: /\/blobs\//, action: { kind: 'delay', ms: 150 } });
    const beats: number[] = [];
    const engine = streamingEngine();
    const plan = await engine.plan({ source: `${src.host}/team/app:1`, target: dst.host, images: ['app:1'] });
    const initial = ImportEngine.blobStates(plan, 'app').find((b) => b.digest === layerDigest)!;
    const done = await engine.copyBlob(
      plan,
      initial,
      { until: Date.now() + 60_000 },
      {
        heartbeat: async () => {
          beats.push(Date.now());
        },
      },
    );
    expect(done.phase).toBe('done');
    const patches = dst.requests.filter((r) => r.method === 'PATCH');
    expect(patches).toHaveLength(1);
    expect(patches[0]!.bodyLength).toBe(layer.length);
    expect(Buffer.from(dst.getBlob(layerDigest)!).equals(layer)).toBe(true);
    // 9 parts 150 ms apart: about 1.35 s of streaming, a heartbeat after each second of it
    expect(beats.length).toBeGreaterThanOrEqual(1);
    for (let i = 1; i < beats.length; i++) expect(beats[i]! - beats[i - 1]!).toBeGreaterThanOrEqual(HEARTBEAT_MS);
  });

  it('a step whose stream sent every byte as its budget ended closes the upload itself (no step for one PUT)', async () => {
    await start();
    // two parts streamed at once, the registry's answer 400 ms late: the budget (200 ms) ends with every byte sent
    const { layer, layerDigest } = seedImage(src, 'team/app', '1', 96 * KiB);
    dst.faults.push({ method: 'PATCH', path: /\/uploads\//, action: { kind: 'delay', ms: 400 } });
    const engine = streamingEngine();
    const plan = await engine.plan({ source: `${src.host}/team/app:1`, target: dst.host, images: ['app:1'] });
    const initial = ImportEngine.blobStates(plan, 'app').find((b) => b.digest === layerDigest)!;
    const began = Date.now();
    const s = await engine.copyBlob(plan, initial, { until: began + 200 });
    expect(Date.now() - began).toBeGreaterThanOrEqual(400);
    expect(s.phase).toBe('done');
    expect(dst.requests.filter((r) => r.method === 'PATCH').map((r) => r.bodyLength)).toEqual([layer.length]);
    expect(dst.requests.filter((r) => r.method === 'PUT' && r.url.includes('/uploads/'))).toHaveLength(1);
    expect(Buffer.from(dst.getBlob(layerDigest)!).equals(layer)).toBe(true);
  });

  it('fetches only the chunks a step uploads (nothing read ahead is thrown away at the end of a step)', async () => {
    await start();
    const { layer, layerDigest } = seedImage(src, 'team/app', '1', 100 * KiB + 123);
    const engine = engineFor(16 * KiB, 8);
    const plan = await engine.plan({ source: `${src.host}/team/app:1`, target: dst.host, images: ['app:1'] });
    let s = ImportEngine.blobStates(plan, 'app').find((b) => b.digest === layerDigest)!;
    s = await engine.copyBlob(plan, s, { until: Date.now() + 60_000, maxChunks: 2 });
    s = await engine.copyBlob(plan, s, { until: 0 }); // budget already spent: one chunk, no read-ahead
    expect(bytesPresent(s)).toBe(3 * 16 * KiB);
    while (s.phase !== 'done') s = await engine.copyBlob(plan, s, { until: Date.now() + 60_000 });
    expect(Buffer.from(dst.getBlob(layerDigest)!).equals(layer)).toBe(true);
    const fetched = src.requests
      .filter((r) => r.method === 'GET' && r.url.includes(layerDigest))
      .map((r) => {
        const [a, b] = String(r.headers.range).replace('bytes=', '').split('-').map(Number);
        return b! - a! + 1;
      });
    expect(fetched.reduce((n, x) => n + x, 0)).toBe(layer.length);
  });

  it('resumes a saved session only where the registry confirms the offset', async () => {
    await start();
    const { layer, layerDigest } = seedImage(src, 'team/app', '1', 64 * KiB);
    const engine = engineFor();
    const plan = await engine.plan({ source: `${src.host}/team/app:1`, target: dst.host, images: ['app:1'] });
    const big = ImportEngine.blobStates(plan, 'app').find((b) => b.digest === layerDigest)!;
    const afterTwo = await engine.copyBlob(plan, await engine.copyBlob(plan, big, { until: 0, maxChunks: 1 }), {
      until: 0,
      maxChunks: 1,
    });
    expect(bytesPresent(afterTwo)).toBe(32 * KiB);
    const sessionsBefore = afterTwo.sessions;
    const done = await engineFor().copyBlob(plan, afterTwo, { until: Date.now() + 60_000 });
    expect(done.phase).toBe('done');
    expect(done.sessions).toBe(sessionsBefore);
    expect(Buffer.from(dst.getBlob(layerDigest)!).equals(layer)).toBe(true);
  });

  // The status GET answered as the distribution spec says (the registry's real count, `Range: 0-<last byte>`; no
  // stale-state 404 first, as distribution 2.8 gives): an answer other than the saved offset must start a new
  // session — DELETE the old one, POST — and never PATCH the old session at the saved offset.
  it.each([
    ['more bytes than saved (its next chunk landed, its checkpoint did not)', 'more'],
    ['fewer bytes than saved', 'fewer'],
    ['`0-0` (a session that holds nothing)', 'empty'],
  ] as const)(
    'a saved session whose status answers %s: a new session, no PATCH on the old one',
    async (_name, kind) => {
      await start({}, { distributionStateCheck: false });
      const { layer, layerDigest } = seedImage(src, 'team/app', '1', 64 * KiB);
      const engine = engineFor();
      const plan = await engine.plan({ source: `${src.host}/team/app:1`, target: dst.host, images: ['app:1'] });
      const initial = ImportEngine.blobStates(plan, 'app').find((b) => b.digest === layerDigest)!;
      const one = await engine.copyBlob(plan, initial, { until: 0, maxChunks: 1 });
      const two = await engine.copyBlob(plan, one, { until: 0, maxChunks: 1 });
      if (one.phase !== 'uploading' || two.phase !== 'uploading') throw new Error('expected uploads in progress');
      const fresh =
        kind === 'empty'
          ? await new RegistryClient({ registry: dst.host, insecure: true, retry: fastRetry }).startUpload('app')
          : undefined;
      // the registry holds 32 KiB of the old session (16 KiB at most in the fresh one)
      const saved: BlobState =
        kind === 'more' ? one : kind === 'fewer' ? { ...two, offset: 48 * KiB } : { ...one, location: fresh!.location };
      const oldSession = new URL(saved.phase === 'uploading' ? saved.location : '').pathname;
      dst.requests.length = 0;
      const done = await engineFor().copyBlob(plan, saved, { until: Date.now() + 60_000 });
      expect(done).toMatchObject({ phase: 'done', outcome: 'copied', sessions: saved.sessions + 1 });
      expect(dst.requests.filter((r) => r.url.startsWith(oldSession)).map((r) => r.method)).toEqual(['GET', 'DELETE']);
      const writes = dst.requests
        .filter((r) => ['PATCH', 'PUT', 'POST', 'DELETE'].includes(r.method))
        .map((r) => r.method);
      expect(writes.slice(0, 2)).toEqual(['DELETE', 'POST']);
      expect(dst.requests.filter((r) => r.method === 'PATCH').map((r) => r.headers['content-range'])).toEqual([
        '0-16383',
        '16384-32767',
        '32768-49151',
      ]);
      expect(Buffer.from(dst.getBlob(layerDigest)!).equals(layer)).toBe(true);
    },
  );

  it('restarts the blob in a new session when a saved Location is stale (a step died after its PATCH)', async () => {
    await start();
    const { layer, layerDigest } = seedImage(src, 'team/app', '1', 64 * KiB);
    const engine = engineFor();
    const plan = await engine.plan({ source: `${src.host}/team/app:1`, target: dst.host, images: ['app:1'] });
    const initial = ImportEngine.blobStates(plan, 'app').find((b) => b.digest === layerDigest)!;
    const one = await engine.copyBlob(plan, initial, { until: 0, maxChunks: 1 });
    const two = await engine.copyBlob(plan, one, { until: 0, maxChunks: 1 });
    // Resume from the OLDER state: the registry holds 32 KiB, the state says 16 KiB → distribution poisons it.
    const done = await engineFor().copyBlob(plan, one, { until: Date.now() + 60_000 });
    expect(bytesPresent(two)).toBe(32 * KiB);
    expect(done.phase).toBe('done');
    expect(done.sessions).toBe(one.sessions + 1);
    expect(Buffer.from(dst.getBlob(layerDigest)!).equals(layer)).toBe(true);
  });

  it('survives a PATCH whose answer is lost (distribution poisons that session: new session)', async () => {
    await start();
    const { layer, layerDigest } = seedImage(src, 'team/app', '1', 80 * KiB);
    dst.faults.push({ method: 'PATCH', times: 1, action: { kind: 'resetAfterBody' } });
    const notices: string[] = [];
    const { blobs } = await importAll(engineFor(16 * KiB, 3, notices));
    expect(Buffer.from(dst.getBlob(layerDigest)!).equals(layer)).toBe(true);
    expect(blobs.find((b) => b.digest === layerDigest)!.sessions).toBe(2);
    expect(notices.join('\n')).toMatch(/restarted in a new session/);
  });

  it('continues the same session after a lost PATCH answer on a registry whose status GET is spec-conformant', async () => {
    await start({}, { distributionStateCheck: false });
    const { layer, layerDigest } = seedImage(src, 'team/app', '1', 80 * KiB);
    dst.faults.push({ method: 'PATCH', times: 1, action: { kind: 'resetAfterBody' } });
    const { blobs } = await importAll(engineFor());
    expect(Buffer.from(dst.getBlob(layerDigest)!).equals(layer)).toBe(true);
    expect(blobs.find((b) => b.digest === layerDigest)!.sessions).toBe(1);
  });

  it('copies correctly from a source that ignores Range (200 with the whole blob)', async () => {
    await start({ rangeSupport: false });
    const { layer, layerDigest, digest } = seedImage(src, 'team/app', '1', 70 * KiB);
    const notices: string[] = [];
    const { result } = await importAll(engineFor(16 * KiB, 2, notices));
    expect(result.digest).toBe(digest);
    expect(Buffer.from(dst.getBlob(layerDigest)!).equals(layer)).toBe(true);
    expect(notices.join('\n')).toMatch(/ignores Range/);
  });

  it('retries short bodies ("unexpected length of body") and resets on blob GETs', async () => {
    await start();
    const { layer, layerDigest } = seedImage(src, 'team/app', '1', 70 * KiB);
    src.faults.push({ method: 'GET', path: /\/blobs\/sha256/, times: 2, action: { kind: 'shortBody', bytes: 100 } });
    src.faults.push({ method: 'GET', path: /\/blobs\/sha256/, times: 1, action: { kind: 'reset' } });
    await importAll(engineFor());
    expect(Buffer.from(dst.getBlob(layerDigest)!).equals(layer)).toBe(true);
  });

  it('refuses a Content-Range that does not match the request', async () => {
    await start();
    seedImage(src, 'team/app', '1', 70 * KiB);
    src.faults.push({ method: 'GET', path: /\/blobs\/sha256/, action: { kind: 'longContentRange' } });
    await expect(importAll(engineFor())).rejects.toThrow(/Content-Range.*RFC 7233/);
  });

  it('waits for Retry-After on 429 and 503', async () => {
    await start();
    const { digest } = seedImage(src, 'team/app', '1', 20 * KiB);
    src.faults.push({
      method: 'GET',
      path: /\/manifests\//,
      times: 1,
      action: { kind: 'status', status: 429, headers: { 'retry-after': '1' } },
    });
    dst.faults.push({ method: 'POST', times: 2, action: { kind: 'status', status: 503 } });
    const t0 = Date.now();
    const { result } = await importAll(engineFor());
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(result.digest).toBe(digest);
  });

  it('follows blob redirects to another origin without sending Authorization there', async () => {
    await start({ redirectBlobsTo: 'other', auth: { kind: 'bearer', username: 'u', password: 'p' } });
    const { layer, layerDigest } = seedImage(src, 'team/app', '1', 40 * KiB);
    const engine = new ImportEngine({
      source: new RegistryClient({
        registry: src.host,
        insecure: true,
        credentials: { username: 'u', password: 'p' },
        retry: fastRetry,
      }),
      target: new RegistryClient({ registry: dst.host, insecure: true, retry: fastRetry }),
      chunkSize: 16 * KiB,
      fetchConcurrency: 2,
      ...LIMITS,
    });
    await importAll(engine);
    expect(Buffer.from(dst.getBlob(layerDigest)!).equals(layer)).toBe(true);
    expect(src.redirectRequests.length).toBeGreaterThan(0);
    expect(src.redirectAuthorizationSeen).toBe(false);
    // one token per scope set, not one per request
    const tokenRequests = src.requests.filter((r) => r.url.startsWith('/token'));
    expect(tokenRequests.length).toBeLessThanOrEqual(2);
  });

  it('honours OCI-Chunk-Min-Length larger than the chunk size', async () => {
    await start({}, { chunkMinLength: 32 * KiB });
    const { layer, layerDigest } = seedImage(src, 'team/app', '1', 100 * KiB);
    await importAll(engineFor(8 * KiB));
    expect(Buffer.from(dst.getBlob(layerDigest)!).equals(layer)).toBe(true);
    const patches = dst.requests.filter((r) => r.method === 'PATCH');
    expect(patches.every((p) => p.bodyLength >= 32 * KiB)).toBe(true);
  });

  it('re-importing sends no blob bytes and writes no manifest', async () => {
    await start();
    seedImage(src, 'team/app', '1', 50 * KiB);
    await importAll(engineFor());
    dst.requests.length = 0;
    src.requests.length = 0;
    const { blobs, result } = await importAll(engineFor());
    expect(blobs.every((b) => (b.phase === 'done' ? b.outcome : undefined) === 'existed')).toBe(true);
    expect(result.unchanged).toEqual(['app:1']);
    expect(dst.requests.filter((r) => ['PATCH', 'PUT', 'POST'].includes(r.method))).toEqual([]);
    expect(src.requests.filter((r) => r.method === 'GET' && r.url.includes('/blobs/'))).toEqual([]);
  });

  it('fails with the registry error code when the target refuses a manifest', async () => {
    await start();
    seedImage(src, 'team/app', '1', 10 * KiB);
    dst.faults.push({
      method: 'PUT',
      path: /\/manifests\//,
      action: {
        kind: 'status',
        status: 400,
        body: JSON.stringify({ errors: [{ code: 'MANIFEST_INVALID', message: 'manifest invalid', detail: {} }] }),
      },
    });
    await expect(importAll(engineFor())).rejects.toMatchObject({ code: 'MANIFEST_INVALID', status: 400 });
  });

  it.each([
    [1, 3],
    [2, 2],
  ])(
    'fetches chunks in parts, each once, and copies blobs at once within the shared part pool (FETCH_CONCURRENCY %i, %i blobs)',
    async (fetchConcurrency, blobConcurrency) => {
      await start();
      // 48 KiB chunks fetched as 32 KiB + 16 KiB parts; all blobs together hold at most 2 × FETCH_CONCURRENCY parts
      const images = [1, 2, 3].map((seed) => seedImage(src, 'team/app', `v${seed}`, 200 * KiB + seed, seed));
      const engine = new ImportEngine({
        source: new RegistryClient({ registry: src.host, insecure: true, retry: fastRetry }),
        target: new RegistryClient({ registry: dst.host, insecure: true, retry: fastRetry }),
        chunkSize: 48 * KiB,
        fetchConcurrency,
        partSize: 32 * KiB,
        partGrowth: 1,
        ...LIMITS,
      });
      const index = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: images.map((img, i) => ({
            mediaType: OCI_MANIFEST,
            digest: img.digest,
            size: src.getManifest('team/app', `v${i + 1}`)!.bytes.length,
            platform: { os: 'linux', architecture: `arch${i}` },
          })),
        }),
      );
      src.putManifest('team/app', 'multi', index, 'application/vnd.oci.image.index.v1+json');
      for (let round = 0; round < 3; round++) {
        src.requests.length = 0;
        dst.requests.length = 0;
        await runImport(
          engine,
          { source: `${src.host}/team/app:multi`, target: dst.host, images: [`app${round}:multi`] },
          { blobConcurrency, stepMs: 60_000 },
        );
        for (const img of images) expect(Buffer.from(dst.getBlob(img.layerDigest)!).equals(img.layer)).toBe(true);
        const gets = src.requests
          .filter((r) => r.method === 'GET' && r.headers.range)
          .map((r) => `${r.url} ${String(r.headers.range)}`);
        expect(new Set(gets).size).toBe(gets.length); // no part fetched twice
        const lengths = gets.map((g) => {
          const [a, b] = g.split('bytes=')[1]!.split('-').map(Number);
          return b! - a! + 1;
        });
        expect(Math.max(...lengths)).toBe(32 * KiB);
        expect(lengths).toContain(16 * KiB);
        // every PATCH is a whole chunk (the last one of each blob goes with the final PUT)
        const patches = dst.requests.filter((r) => r.method === 'PATCH');
        expect(patches.length).toBe(3 * 4);
        expect(patches.every((r) => r.bodyLength === 48 * KiB)).toBe(true);
      }
    },
  );

  describe('unbounded chunk size (the CLI): each blob as one streamed PATCH', () => {
    const streamingEngine = (notices: string[] = []) =>
      new ImportEngine({
        source: new RegistryClient({ registry: src.host, insecure: true, retry: fastRetry }),
        target: new RegistryClient({ registry: dst.host, insecure: true, retry: fastRetry }),
        chunkSize: Infinity,
        fetchConcurrency: 3,
        partSize: 16 * KiB,
        partGrowth: 1,
        ...LIMITS,
        events: { onNotice: (m) => notices.push(m) },
      });

    it('sends the parts of a blob in one PATCH without Content-Range (as docker push), then a PUT without body', async () => {
      await start();
      const { layer, layerDigest, digest } = seedImage(src, 'team/app', '1', 100 * KiB + 123);
      const { result } = await importAll(streamingEngine());
      expect(result.digest).toBe(digest);
      expect(Buffer.from(dst.getBlob(layerDigest)!).equals(layer)).toBe(true);
      const patches = dst.requests.filter((r) => r.method === 'PATCH');
      expect(patches).toHaveLength(1);
      expect(patches[0]!.headers['content-range']).toBeUndefined();
      expect(patches[0]!.headers['transfer-encoding']).toBe('chunked');
      expect(patches[0]!.bodyLength).toBe(layer.length);
      const put = dst.requests.find((r) => r.method === 'PUT' && r.url.includes(encodeURIComponent(layerDigest)))!;
      expect(put.bodyLength).toBe(0);
      // the small config blob goes in one PUT with its bytes
      expect(
        dst.requests.filter((r) => r.method === 'PUT' && r.url.includes('digest=') && r.bodyLength > 0),
      ).toHaveLength(1);
      const parts = src.requests
        .filter((r) => r.method === 'GET' && r.url.includes(layerDigest))
        .map((r) => String(r.headers.range));
      expect(parts).toHaveLength(Math.ceil(layer.length / (16 * KiB)));
      expect(new Set(parts).size).toBe(parts.length);
    });

    it('resumes or restarts as the registry says when the streamed PATCH breaks, and copies the blob intact', async () => {
      await start();
      const { layer, layerDigest } = seedImage(src, 'team/app', '1', 100 * KiB + 123);
      // the connection dies before the registry read anything: the same session, from 0
      dst.faults.push({ method: 'PATCH', times: 1, action: { kind: 'reset' } });
      const notices: string[] = [];
      const first = await importAll(streamingEngine(notices));
      expect(Buffer.from(dst.getBlob(layerDigest)!).equals(layer)).toBe(true);
      expect(first.blobs.find((b) => b.digest === layerDigest)!.sessions).toBe(1);
      expect(notices.join('\n')).toMatch(/resumed at 0 after/);
    });

    it('starts a new session when the registry took the whole stream and the answer was lost', async () => {
      await start();
      const { layer, layerDigest } = seedImage(src, 'team/app', '1', 100 * KiB + 123);
      dst.faults.push({ method: 'PATCH', times: 1, action: { kind: 'resetAfterBody' } });
      const notices: string[] = [];
      const { blobs } = await importAll(streamingEngine(notices));
      expect(Buffer.from(dst.getBlob(layerDigest)!).equals(layer)).toBe(true);
      expect(blobs.find((b) => b.digest === layerDigest)!.sessions).toBe(2);
      expect(notices.join('\n')).toMatch(/restarted in a new session/);
    });

    it('refuses to complete an upload whose source bytes do not hash to the digest', async () => {
      await start();
      const { layer, layerDigest } = seedImage(src, 'team/app', '1', 100 * KiB + 123);
      // the source now serves other bytes under the same digest (a corrupt store or a lying proxy)
      src.corruptBlob(layerDigest, randomBlob(layer.length, 99));
      await expect(importAll(streamingEngine())).rejects.toThrow(/hash to sha256:/);
      expect(dst.getBlob(layerDigest)).toBeUndefined();
    });
  });
});
