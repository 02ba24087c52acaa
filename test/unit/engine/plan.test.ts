/**
 * Planning against a scripted source: the limits are checked as the walk goes, so a hostile index costs
 * the requests up to the first manifest that breaks a limit and no more.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { plan } from '../../../lib/engine/plan.js';
import { RegistryClient } from '../../../lib/oci/registry.js';
import { scripted, type ScriptedPeer } from '../../support/scripted.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const retry = { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 };
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function manifest(layers: number, layerSize = 1): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha('config'), size: 6 },
      layers: Array.from({ length: layers }, (_, i) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar',
        digest: sha(`layer ${i}`),
        size: layerSize,
      })),
    }),
  );
}

describe('plan limits (scripted source)', () => {
  const peers: ScriptedPeer[] = [];
  // every peer is checked, even where a test forgets to: each exchange came, in order, and nothing else
  afterEach(async () => {
    const done = peers.splice(0);
    await Promise.all(done.map((p) => p.close()));
    for (const p of done) p.verify();
  });
  const options = (
    source: ScriptedPeer,
    target: ScriptedPeer,
    limits: Partial<{ maxManifests: number; maxBlobs: number; maxImportBytes: number }> = {},
  ) => ({
    source: new RegistryClient({ registry: source.host, insecure: true, retry }),
    target: new RegistryClient({ registry: target.host, insecure: true, retry }),
    maxManifests: 50,
    maxBlobs: 1000,
    maxImportBytes: 2 ** 40,
    ...limits,
  });

  it('a fan-out bomb (an index of 50 children of 1,500 layers each) fails TOO_MANY_BLOBS after the first batch of children', async () => {
    const child = manifest(1500);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: Array.from({ length: 50 }, (_, i) => ({
          mediaType: OCI_MANIFEST,
          digest: sha(child),
          size: child.length,
          platform: { os: 'linux', architecture: `a${i}` },
        })),
      }),
    );
    const source = await scripted([
      {
        req: { method: 'GET', path: '/v2/evil/manifests/1' },
        res: { status: 200, headers: { 'content-type': OCI_INDEX }, body: index },
      },
      // one batch of 8 children fetched at once; the first of them breaks the limit, no further batch is asked for
      ...Array.from({ length: 8 }, () => ({
        req: { method: 'GET', path: `/v2/evil/manifests/${sha(child)}` },
        res: { status: 200, headers: { 'content-type': OCI_MANIFEST }, body: child },
      })),
    ]);
    // the target tag is asked for while the source is read
    const target = await scripted([{ req: { method: 'HEAD', path: '/v2/evil/manifests/1' }, res: { status: 404 } }]);
    peers.push(source, target);
    const err = await plan({ source: `${source.host}/evil:1`, target: target.host }, options(source, target)).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({
      code: 'TOO_MANY_BLOBS',
      temporary: false,
      message: expect.stringContaining('more than 1000 unique blobs (MAX_BLOBS)'),
    });
    source.verify();
    target.verify();
  });

  it('refuses an import larger than MAX_IMPORT_BYTES, and one blob alone larger than it', async () => {
    const big = manifest(3, 400);
    const source = await scripted([
      {
        req: { method: 'GET', path: '/v2/app/manifests/1' },
        res: { status: 200, headers: { 'content-type': OCI_MANIFEST }, body: big },
      },
      {
        req: { method: 'GET', path: '/v2/app/manifests/1' },
        res: { status: 200, headers: { 'content-type': OCI_MANIFEST }, body: big },
      },
    ]);
    // the target tag is asked for while the source is read (the answer may come after the refusal)
    const target = await scripted([
      { req: { method: 'HEAD', path: '/v2/app/manifests/1' }, res: { status: 404 } },
      { req: { method: 'HEAD', path: '/v2/app/manifests/1' }, res: { status: 404 } },
    ]);
    peers.push(source, target);
    await expect(
      plan({ source: `${source.host}/app:1`, target: target.host }, options(source, target, { maxImportBytes: 1000 })),
    ).rejects.toMatchObject({ code: 'IMPORT_TOO_LARGE', message: expect.stringContaining('(MAX_IMPORT_BYTES)') });
    await expect(
      plan({ source: `${source.host}/app:1`, target: target.host }, options(source, target, { maxImportBytes: 300 })),
    ).rejects.toMatchObject({ code: 'IMPORT_TOO_LARGE', message: expect.stringContaining('alone is 400') });
    source.verify();
    await vi.waitFor(() => target.verify());
  });

  it('refuses an index over MAX_MANIFESTS before fetching any child', async () => {
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: Array.from({ length: 51 }, (_, i) => ({ mediaType: OCI_MANIFEST, digest: sha(`m${i}`), size: 10 })),
      }),
    );
    const source = await scripted([
      {
        req: { method: 'GET', path: '/v2/app/manifests/1' },
        res: { status: 200, headers: { 'content-type': OCI_INDEX }, body: index },
      },
    ]);
    const target = await scripted([{ req: { method: 'HEAD', path: '/v2/app/manifests/1' }, res: { status: 404 } }]);
    peers.push(source, target);
    await expect(
      plan({ source: `${source.host}/app:1`, target: target.host }, options(source, target)),
    ).rejects.toMatchObject({ code: 'TOO_MANY_MANIFESTS' });
    source.verify();
    await vi.waitFor(() => target.verify());
  });

  it('a tag the target has at another digest is refused (TAG_EXISTS); at the same digest, or with force, the plan goes on', async () => {
    const m = manifest(1, 10);
    const other = sha('another image');
    const get = {
      req: { method: 'GET', path: '/v2/app/manifests/1' },
      res: { status: 200, headers: { 'content-type': OCI_MANIFEST }, body: m },
    };
    const head = (digest: string) => ({
      req: { method: 'HEAD', path: '/v2/app/manifests/1' },
      res: {
        status: 200,
        headers: { 'content-type': OCI_MANIFEST, 'docker-content-digest': digest, 'content-length': '10' },
      },
    });
    // with force the target is not asked about its tags at all
    const source = await scripted([get, get, get]);
    const target = await scripted([head(other), head(sha(m))]);
    peers.push(source, target);
    const req = { source: `${source.host}/app:1`, target: target.host };
    await expect(plan(req, options(source, target))).rejects.toMatchObject({
      code: 'TAG_EXISTS',
      side: 'target',
      message: `tag app:1 already exists on ${target.host} (${other}); use force to overwrite it`,
    });
    const same = await plan(req, options(source, target));
    expect(same).toMatchObject({ root: { digest: sha(m) }, force: false });
    const forced = await plan({ ...req, force: true }, options(source, target));
    expect(forced).toMatchObject({ root: { digest: sha(m) }, force: true });
    // a tag that is there (at any digest), or not asked about: the target is not taken to be new to the blobs
    expect(same.newTags).toBeUndefined();
    expect(forced.newTags).toBeUndefined();
  });

  it('an import of exactly MAX_IMPORT_BYTES is planned; one byte less refuses it, naming no single blob', async () => {
    const m = manifest(3, 400); // 6 + 3 × 400 bytes of blobs
    const get = {
      req: { method: 'GET', path: '/v2/app/manifests/1' },
      res: { status: 200, headers: { 'content-type': OCI_MANIFEST }, body: m },
    };
    const head = { req: { method: 'HEAD', path: '/v2/app/manifests/1' }, res: { status: 404 } };
    const source = await scripted([get, get, get]);
    const target = await scripted([head, head, head]);
    peers.push(source, target);
    const req = { source: `${source.host}/app:1`, target: target.host };
    expect((await plan(req, options(source, target, { maxImportBytes: 1206 }))).blobs).toHaveLength(4);
    const err = await plan(req, options(source, target, { maxImportBytes: 1205 })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'IMPORT_TOO_LARGE', side: 'source' });
    expect((err as Error).message).not.toContain('alone');
    // a blob exactly as large as the limit is not "alone larger" than it either
    const err400 = await plan(req, options(source, target, { maxImportBytes: 400 })).catch((e: unknown) => e);
    expect((err400 as Error).message).not.toContain('alone');
    await vi.waitFor(() => target.verify());
  });

  describe('platform filters', () => {
    const child = (arch: string) =>
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(`config ${arch}`), size: 7 },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(`layer ${arch}`), size: 100 }],
        }),
      );
    const archs = ['amd64', 'arm64', 's390x'];
    const children = archs.map(child);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: archs.map((architecture, i) => ({
          mediaType: OCI_MANIFEST,
          digest: sha(children[i]!),
          size: children[i]!.length,
          platform: { os: 'linux', architecture },
        })),
      }),
    );
    const getIndex = {
      req: { method: 'GET', path: '/v2/app/manifests/1' },
      res: { status: 200, headers: { 'content-type': OCI_INDEX }, body: index },
    };
    const getChild = (i: number) => ({
      req: { method: 'GET', path: `/v2/app/manifests/${sha(children[i]!)}` },
      res: { status: 200, headers: { 'content-type': OCI_MANIFEST }, body: children[i]! },
    });
    const head = { req: { method: 'HEAD', path: '/v2/app/manifests/1' }, res: { status: 404 } };

    it('two platforms of three: a filtered index of those two, their manifests named by platform', async () => {
      const source = await scripted([getIndex, [getChild(0), getChild(1)]]);
      const target = await scripted([head]);
      peers.push(source, target);
      const p = await plan(
        { source: `${source.host}/app:1`, target: target.host, platforms: ['linux/amd64', 'linux/arm64'] },
        options(source, target),
      );
      expect(p.root.digest).not.toBe(sha(index));
      expect(p.root.mediaType).toBe(OCI_INDEX);
      expect(p.manifests.map((m) => [m.digest, m.platform])).toEqual([
        [sha(children[0]!), 'linux/amd64'],
        [sha(children[1]!), 'linux/arm64'],
        [p.root.digest, undefined],
      ]);
      const written = JSON.parse(Buffer.from(p.manifests[2]!.bytes, 'base64').toString('utf8')) as {
        manifests: { digest: string }[];
      };
      expect(written.manifests.map((c) => c.digest)).toEqual([sha(children[0]!), sha(children[1]!)]);
      expect(p.blobs).toHaveLength(4);
      expect(p.notes).toContainEqual(expect.stringContaining('a filtered index of 2 platforms was written'));
    });

    it('one platform: the tags point at its manifest, no index is written', async () => {
      const source = await scripted([getIndex, getChild(1)]);
      const target = await scripted([head]);
      peers.push(source, target);
      const p = await plan(
        { source: `${source.host}/app:1`, target: target.host, platforms: ['linux/arm64'] },
        options(source, target),
      );
      expect(p.root).toEqual({ digest: sha(children[1]!), mediaType: OCI_MANIFEST });
      expect(p.manifests.map((m) => m.digest)).toEqual([sha(children[1]!)]);
      expect(p.notes).toContainEqual(expect.stringContaining('only linux/arm64 was selected'));
    });

    it('no platform matches: NO_MATCHING_PLATFORM lists what the index has, and no child is fetched', async () => {
      const source = await scripted([getIndex]);
      const target = await scripted([head]);
      peers.push(source, target);
      await expect(
        plan(
          { source: `${source.host}/app:1`, target: target.host, platforms: ['windows/amd64'] },
          options(source, target),
        ),
      ).rejects.toMatchObject({
        code: 'NO_MATCHING_PLATFORM',
        side: 'request',
        message: expect.stringContaining('it has: linux/amd64, linux/arm64, linux/s390x'),
      });
      await vi.waitFor(() => target.verify());
    });
  });

  it('a plan within the limits: one manifest GET, and meanwhile one HEAD of each target tag', async () => {
    const m = manifest(2, 10);
    const source = await scripted([
      {
        req: { method: 'GET', path: '/v2/app/manifests/1' },
        res: { status: 200, headers: { 'content-type': OCI_MANIFEST }, body: m },
      },
    ]);
    const target = await scripted([
      [
        { req: { method: 'HEAD', path: '/v2/mirror/app/manifests/1' }, res: { status: 404 } },
        { req: { method: 'HEAD', path: '/v2/mirror/app/manifests/stable' }, res: { status: 404 } },
      ],
    ]);
    peers.push(source, target);
    const p = await plan(
      { source: `${source.host}/app:1`, target: target.host, images: ['mirror/app:1', 'mirror/app:stable'] },
      options(source, target),
    );
    expect(p).toMatchObject({ root: { digest: sha(m) }, blobs: [{ size: 6 }, { size: 10 }, { size: 10 }] });
    // no target tag is there yet: the copy may ask for each small blob with the POST of its upload
    expect(p.newTags).toBe(true);
    source.verify();
    target.verify();
  });

  it('an import by digest (a ref without a tag) is not taken to be new to the target: nothing says what it holds', async () => {
    const m = manifest(1, 10);
    const get = {
      req: { method: 'GET', path: `/v2/app/manifests/${sha(m)}` },
      res: { status: 200, headers: { 'content-type': OCI_MANIFEST }, body: m },
    };
    const source = await scripted([get]);
    const target = await scripted([]);
    peers.push(source, target);
    const p = await plan(
      { source: `${source.host}/app@${sha(m)}`, target: target.host, repository: 'mirror/app' },
      options(source, target),
    );
    expect(p.target.refs).toEqual([{ repository: 'mirror/app' }]);
    expect(p.newTags).toBeUndefined();
    source.verify();
    target.verify();
  });
});
