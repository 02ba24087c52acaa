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

  const setup = async () => {
    const [src, dst] = await Promise.all([startFakeRegistry(), startFakeRegistry()]);
    regs = [src, dst];
    const digest = seed(src);
    const config = loadConfig({ TARGET_REGISTRY: dst.host, CHUNK_SIZE: '64KiB' });
    const engine = engineFromConfig(config, {
      source: new RegistryClient({ registry: src.host, insecure: true, retry: fastRetry }),
      target: new RegistryClient({ registry: dst.host, insecure: true, retry: fastRetry }),
    });
    const plan = await engine.plan({
      source: `${src.host}/team/app:1`,
      target: dst.host,
      images: ['app:1', 'mirror/app:1'],
    });
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
});
