/**
 * The one "copy every blob, then finalize" (lib/engine/engine.ts copyAll / copyAllAndFinalize), shared by the
 * CLI's runImport and the queue's small-import and finalize steps, and engineFromConfig, the one way to build an
 * engine from the settings: against two fake registries.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../lib/config.js';
import { copyAll, copyAllAndFinalize, engineFromConfig, ImportEngine } from '../../../lib/engine/engine.js';
import { RegistryClient } from '../../../lib/oci/registry.js';
import { startFakeRegistry, type FakeRegistry } from '../../support/fake-registry.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const fastRetry = { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20 };

function seed(reg: FakeRegistry): string {
  const layers = [1, 2, 3].map((n) => Buffer.alloc(20_000 * n, n));
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: reg.putBlob('team/app', config),
        size: config.length,
      },
      layers: layers.map((l) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar',
        digest: reg.putBlob('team/app', l),
        size: l.length,
      })),
    }),
  );
  reg.putManifest('team/app', '1', manifest, OCI_MANIFEST);
  return `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
}

describe('copy every blob, then finalize', () => {
  let regs: FakeRegistry[] = [];
  afterEach(async () => {
    await Promise.all(regs.map((r) => r.close()));
    regs = [];
  });

  const setup = async (images = ['app:1', 'mirror/app:1']) => {
    const [src, dst] = await Promise.all([startFakeRegistry(), startFakeRegistry()]);
    regs = [src, dst];
    const digest = seed(src);
    const config = loadConfig({ TARGET_REGISTRY: dst.host, CHUNK_SIZE: '64KiB' });
    const engine = engineFromConfig(config, {
      source: new RegistryClient({ registry: src.host, insecure: true, retry: fastRetry }),
      target: new RegistryClient({ registry: dst.host, insecure: true, retry: fastRetry }),
    });
    const plan = await engine.plan({ source: `${src.host}/team/app:1`, target: dst.host, images });
    return { src, dst, digest, engine, plan, context: ImportEngine.context(plan) };
  };

  it('past its deadline starts nothing and says incomplete; then copies into every repository and finalizes once', async () => {
    const { dst, digest, engine, plan, context } = await setup();
    expect(context.target.repositories).toEqual(['app', 'mirror/app']);
    let asked = false;
    const late = await copyAllAndFinalize(engine, plan, context, {
      blobConcurrency: 2,
      until: Date.now() - 1,
      beforeFinalize: async () => (asked = true),
    });
    expect(late.outcome).toBe('incomplete');
    expect(asked).toBe(false);
    expect(dst.requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD')).toEqual([]);

    const run = await copyAllAndFinalize(engine, plan, context, {
      blobConcurrency: 2,
      stepMs: 60_000,
      beforeFinalize: async () => (asked = true),
    });
    expect(asked).toBe(true);
    expect(run.outcome).toBe('finalized');
    expect(run.outcome === 'finalized' && run.result.digest).toBe(digest);
    expect(run.blobs).toHaveLength(2 * plan.blobs.length);
    // the second repository got its blobs by mount from the first
    expect(
      run.blobs
        .filter((b) => b.phase === 'done' && b.repository === 'mirror/app')
        .every((b) => b.phase === 'done' && b.outcome === 'mounted'),
    ).toBe(true);
  });

  // One manifest put by its tag into one repository: the tag's check (finalize's guard against a tag written
  // meanwhile) goes out with the last blob's closing PUT, not after its answer.
  it("asks the tag as the last blob's closing PUT goes out, and puts the manifest after that PUT's answer", async () => {
    const { dst, digest, engine, plan, context } = await setup(['app:1']);
    const closing = /^\/v2\/app\/blobs\/uploads\/.*digest=/;
    dst.faults.push({ method: 'PUT', path: closing, action: { kind: 'delay', ms: 300 } });
    const arrived: { at: number; method: string; url: string }[] = [];
    dst.onRequest = (r) => arrived.push({ at: Date.now(), method: r.method, url: r.url });
    const run = await copyAllAndFinalize(engine, plan, context, { blobConcurrency: 4, stepMs: 60_000 });
    expect(run.outcome === 'finalized' && run.result).toMatchObject({ digest, tagged: ['app:1'] });
    const puts = arrived.filter((r) => r.method === 'PUT' && closing.test(r.url));
    expect(puts).toHaveLength(plan.blobs.length);
    const lastPut = Math.max(...puts.map((r) => r.at));
    const check = arrived.filter((r) => r.method === 'HEAD' && r.url === '/v2/app/manifests/1');
    expect(check).toHaveLength(1); // the plan asked the tag on its own target client before this capture
    expect(check[0]!.at - lastPut).toBeLessThan(250);
    const manifest = arrived.find((r) => r.method === 'PUT' && r.url === '/v2/app/manifests/1');
    expect(manifest!.at - lastPut).toBeGreaterThanOrEqual(290);
  });

  it('the tag written by another client while the blobs close is still refused without force', async () => {
    const { dst, engine, plan, context } = await setup(['app:1']);
    const closing = /^\/v2\/app\/blobs\/uploads\/.*digest=/;
    dst.faults.push({ method: 'PUT', path: closing, action: { kind: 'delay', ms: 100 } });
    const other = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [] }));
    dst.onRequest = (r) => {
      if (r.method === 'PUT' && closing.test(r.url) && !dst.getManifest('app', '1'))
        dst.putManifest('app', '1', other, OCI_MANIFEST);
    };
    await expect(
      copyAllAndFinalize(engine, plan, context, { blobConcurrency: 4, stepMs: 60_000 }),
    ).rejects.toMatchObject({ code: 'TAG_EXISTS' });
    expect(Buffer.from(dst.getManifest('app', '1')!.bytes).equals(other)).toBe(true);
  });

  it('a job that ended before finalize: stopped, nothing tagged; everything already there: not fresh', async () => {
    const { dst, engine, plan, context } = await setup();
    const stopped = await copyAllAndFinalize(engine, plan, context, {
      blobConcurrency: 3,
      stepMs: 60_000,
      beforeFinalize: async () => false,
    });
    expect(stopped.outcome).toBe('stopped');
    expect(dst.requests.some((r) => r.method === 'PUT' && r.url.includes('/manifests/'))).toBe(false);
    const again = await copyAll(engine, plan, context, { blobConcurrency: 3, stepMs: 60_000 });
    expect(again).toMatchObject({ complete: true, fresh: false });
    expect(again.blobs.every((b) => b.phase === 'done' && b.outcome === 'existed')).toBe(true);
  });

  it('into a new tag: each small blob asked with the POST of its upload (no HEAD); the same blobs under another new tag: all there, nothing uploaded', async () => {
    const { src, dst, digest, engine, plan, context } = await setup(['app:1']);
    expect(plan.newTags).toBe(true);
    const first = await copyAllAndFinalize(engine, plan, context, { blobConcurrency: 4, stepMs: 60_000 });
    expect(first).toMatchObject({ outcome: 'finalized', result: { digest, tagged: ['app:1'] } });
    const blobRequests = () => dst.requests.filter((r) => r.url.includes('/blobs/')).map((r) => r.method);
    expect(blobRequests().sort()).toEqual([...Array(4).fill('POST'), ...Array(4).fill('PUT')]);
    expect(dst.requests.filter((r) => r.method === 'POST').every((r) => r.url.includes('&from=app'))).toBe(true);
    // another process (fresh clients: nothing remembered) imports the same image under a new tag
    dst.requests.length = 0;
    const again = engineFromConfig(loadConfig({ TARGET_REGISTRY: dst.host, CHUNK_SIZE: '64KiB' }), {
      source: new RegistryClient({ registry: src.host, insecure: true, retry: fastRetry }),
      target: new RegistryClient({ registry: dst.host, insecure: true, retry: fastRetry }),
    });
    const plan2 = await again.plan({ source: `${src.host}/team/app:1`, target: dst.host, images: ['app:2'] });
    const second = await copyAllAndFinalize(again, plan2, ImportEngine.context(plan2), {
      blobConcurrency: 4,
      stepMs: 60_000,
    });
    expect(second).toMatchObject({ outcome: 'finalized', result: { digest, tagged: ['app:2'] } });
    expect(second.blobs.every((b) => b.phase === 'done' && b.outcome === 'existed')).toBe(true);
    expect(blobRequests()).toEqual(Array(4).fill('POST'));
  });
});
