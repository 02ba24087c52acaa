/**
 * Referrers (issue 15) against the in-process fake registry: the referrers API (filtered by the server
 * or not, paginated), the fallback tag `sha256-<hex>` where the API is absent (404, as distribution
 * 2.8), cosign's tags, referrers of referrers, platform filters, the limits, and the target's fallback
 * tag created, merged (entries kept, none twice) and guarded against concurrent writers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ImportEngine, runImport } from '../../../lib/engine/engine.js';
import { COSIGN_TAGS } from '../../../lib/oci/referrers.js';
import { RegistryClient } from '../../../lib/oci/registry.js';
import { startFakeRegistry, type FakeRegistry, type FakeRegistryOptions } from '../../support/fake-registry.js';
import {
  attach,
  fallbackEntries,
  fallbackTag,
  hex,
  OCI_INDEX,
  OCI_MANIFEST,
  SBOM,
  seedIndex,
  sha,
  SIG,
} from '../../support/referrer-fixtures.js';

const fastRetry = { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20 };
const entries = fallbackEntries;

describe('referrers (fake registries)', () => {
  let src: FakeRegistry;
  let dst: FakeRegistry;
  const start = async (s: FakeRegistryOptions = {}, d: FakeRegistryOptions = {}) => {
    [src, dst] = await Promise.all([startFakeRegistry(s), startFakeRegistry(d)]);
  };
  afterEach(async () => {
    await Promise.all([src?.close(), dst?.close()]);
  });
  const engine = (limits: Partial<{ maxManifests: number; maxBlobs: number }> = {}) =>
    new ImportEngine({
      source: new RegistryClient({ registry: src.host, insecure: true, retry: fastRetry }),
      target: new RegistryClient({ registry: dst.host, insecure: true, retry: fastRetry }),
      chunkSize: 64 * 1024,
      fetchConcurrency: 2,
      maxManifests: 50,
      maxBlobs: 1000,
      maxImportBytes: 2 ** 40,
      ...limits,
    });
  const run = (
    o: {
      includeReferrers?: boolean;
      referrerTypes?: string[];
      platforms?: string[];
      force?: boolean;
      images?: string[];
    } = {},
    limits = {},
  ) =>
    runImport(
      engine(limits),
      { source: `${src.host}/team/app:1`, target: dst.host, images: o.images ?? ['app:1'], ...o },
      { blobConcurrency: 2, stepMs: 60_000 },
    );
  const referrerGets = () => src.requests.filter((r) => r.method === 'GET' && r.url.includes('/referrers/'));

  it('through the referrers API: signature, SBOM and a signature of the SBOM, byte for byte; the target API lists them, no fallback tag', async () => {
    await start({ referrers: { filter: true } }, { referrers: { filter: true } });
    const { index, amd64 } = seedIndex(src);
    const sig = attach(src, 'team/app', index, { configType: SIG, payload: 'signature of the index' });
    const sbom = attach(src, 'team/app', index, { artifactType: SBOM, payload: '{"spdxVersion":"SPDX-2.3"}' });
    const sbomSig = attach(src, 'team/app', sbom, { configType: SIG, payload: 'signature of the SBOM' });
    const childSig = attach(src, 'team/app', amd64, { configType: SIG, payload: 'signature of amd64' });

    const r = await run({ includeReferrers: true });
    expect(r.digest).toBe(index.digest);
    for (const m of [sig, sbom, sbomSig, childSig])
      expect(Buffer.from(dst.getManifest('app', m.digest)!.bytes).equals(m.bytes)).toBe(true);
    expect(r.plan.referrers!.map((x) => [x.digest, x.subject, x.via, x.artifactType])).toEqual(
      expect.arrayContaining([
        [sig.digest, index.digest, 'api', SIG],
        [sbom.digest, index.digest, 'api', SBOM],
        [sbomSig.digest, sbom.digest, 'api', SIG],
        [childSig.digest, amd64.digest, 'api', SIG],
      ]),
    );
    expect(r.plan.referrers).toHaveLength(4);
    // referrers' blobs travel too: the SBOM's payload is on the target
    expect(dst.getBlob(sha('{"spdxVersion":"SPDX-2.3"}'))).toBeDefined();
    expect(
      dst
        .referrersOf('app', index.digest)
        .map((d) => d.digest)
        .sort(),
    ).toEqual([sig.digest, sbom.digest].sort());
    expect(dst.tags('app')).toEqual(['1']);
    // every referrer manifest PUT before the tag
    const puts = dst.requests.filter((q) => q.method === 'PUT' && q.url.includes('/manifests/')).map((q) => q.url);
    expect(puts.at(-1)).toBe('/v2/app/manifests/1');
    // the subject by its digest before its referrers, not only by its tag at the end (rootByTag in finalize.ts)
    const rootPut = puts.indexOf(`/v2/app/manifests/${index.digest}`);
    expect(rootPut).toBeGreaterThan(-1);
    expect(rootPut).toBeLessThan(puts.indexOf(`/v2/app/manifests/${sig.digest}`));
    // one list per manifest of the import: index, 2 children, 4 referrers; no fallback tag asked for
    expect(referrerGets()).toHaveLength(7);
    expect(
      src.requests.some((q) => q.method === 'GET' && q.url === `/v2/team/app/manifests/sha256-${hex(index.digest)}`),
    ).toBe(false);
  });

  it('referrerTypes filters: the server applies artifactType (OCI-Filters-Applied), or the client does', async () => {
    for (const filter of [true, false]) {
      await start({ referrers: { filter } }, { referrers: {} });
      const { index } = seedIndex(src);
      const sig = attach(src, 'team/app', index, { configType: SIG, payload: 'sig' });
      attach(src, 'team/app', index, { artifactType: SBOM, payload: 'sbom' });
      const r = await run({ includeReferrers: true, referrerTypes: [SIG] });
      expect(r.plan.referrers!.map((x) => x.digest)).toEqual([sig.digest]);
      expect(dst.referrersOf('app', index.digest).map((d) => d.digest)).toEqual([sig.digest]);
      expect(dst.getBlob(sha('sbom'))).toBeUndefined();
      expect(referrerGets().map((q) => q.url)).toContain(
        `/v2/team/app/referrers/${index.digest}?artifactType=${encodeURIComponent(SIG)}`,
      );
      await Promise.all([src.close(), dst.close()]);
    }
  });

  it('follows the referrers API pages (Link on the same origin)', async () => {
    await start({ referrers: { pageSize: 2 } }, { referrers: {} });
    const { index } = seedIndex(src);
    const all = [1, 2, 3, 4, 5].map((i) => attach(src, 'team/app', index, { configType: SIG, payload: `sig ${i}` }));
    const r = await run({ includeReferrers: true });
    expect(r.plan.referrers!.map((x) => x.digest).sort()).toEqual(all.map((a) => a.digest).sort());
    expect(
      referrerGets()
        .filter((q) => q.url.startsWith(`/v2/team/app/referrers/${index.digest}`))
        .map((q) => q.url),
    ).toEqual([
      `/v2/team/app/referrers/${index.digest}`,
      `/v2/team/app/referrers/${index.digest}?page=1`,
      `/v2/team/app/referrers/${index.digest}?page=2`,
    ]);
  });

  it('without includeReferrers: no referrers request, nothing extra written', async () => {
    await start({ referrers: {} }, {});
    const { index } = seedIndex(src);
    const sig = attach(src, 'team/app', index, { configType: SIG, payload: 'sig' });
    fallbackTag(src, 'team/app', index.digest, [{ digest: sig.digest, size: sig.bytes.length, artifactType: SIG }]);
    const r = await run();
    expect(r.plan.referrers).toBeUndefined();
    expect(referrerGets()).toEqual([]);
    expect(dst.getManifest('app', sig.digest)).toBeUndefined();
    expect(dst.tags('app')).toEqual(['1']);
  });

  it("fallback tag on both sides (no API, as distribution 2.8): the target gets the source's index as it is; a second import writes nothing", async () => {
    await start();
    const { index } = seedIndex(src);
    const sig = attach(src, 'team/app', index, { configType: SIG, payload: 'sig' });
    const sbom = attach(src, 'team/app', index, { artifactType: SBOM, payload: 'sbom' });
    const tag = fallbackTag(src, 'team/app', index.digest, [
      { digest: sig.digest, size: sig.bytes.length, artifactType: SIG },
      { digest: sbom.digest, size: sbom.bytes.length, artifactType: SBOM },
    ]);
    const r = await run({ includeReferrers: true });
    expect(r.plan.referrers!.every((x) => x.via === 'tag')).toBe(true);
    expect(dst.getManifest('app', `sha256-${hex(index.digest)}`)!.digest).toBe(tag.digest);
    expect(Buffer.from(dst.getManifest('app', sig.digest)!.bytes).equals(sig.bytes)).toBe(true);
    // the API was asked once (404), then only fallback tags
    expect(referrerGets()).toHaveLength(1);

    dst.requests.length = 0;
    const again = await run({ includeReferrers: true });
    expect(again.unchanged).toEqual(['app:1']);
    expect(dst.requests.filter((q) => q.method === 'PUT')).toEqual([]);
  });

  it('merges into an existing fallback tag on the target: its entries kept, none added twice', async () => {
    await start();
    const { index } = seedIndex(src);
    const sig = attach(src, 'team/app', index, { configType: SIG, payload: 'sig' });
    fallbackTag(src, 'team/app', index.digest, [{ digest: sig.digest, size: sig.bytes.length, artifactType: SIG }]);
    // the target has the image and a signature of its own, listed in its fallback tag
    dst.putManifest('app', index.digest, index.bytes, OCI_INDEX);
    const theirs = attach(dst, 'app', index, {
      artifactType: 'application/vnd.cncf.notary.signature',
      payload: 'notation',
    });
    fallbackTag(dst, 'app', index.digest, [
      { digest: theirs.digest, size: theirs.bytes.length, artifactType: 'application/vnd.cncf.notary.signature' },
    ]);

    await run({ includeReferrers: true });
    expect(entries(dst, 'app', index.digest).map((e) => e.digest)).toEqual([theirs.digest, sig.digest]);
    expect(entries(dst, 'app', index.digest)[1]).toEqual({
      mediaType: OCI_MANIFEST,
      digest: sig.digest,
      size: sig.bytes.length,
      artifactType: SIG,
      annotations: { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' },
    });
    await run({ includeReferrers: true });
    expect(entries(dst, 'app', index.digest).map((e) => e.digest)).toEqual([theirs.digest, sig.digest]);
  });

  it('a source with the API into a target without: the fallback tag is created from the manifests (artifactType, annotations)', async () => {
    await start({ referrers: {} }, {});
    const { index } = seedIndex(src);
    const sbom = attach(src, 'team/app', index, {
      artifactType: SBOM,
      payload: 'sbom',
      annotations: { 'org.example.format': 'spdx' },
    });
    await run({ includeReferrers: true });
    expect(entries(dst, 'app', index.digest)).toEqual([
      {
        mediaType: OCI_MANIFEST,
        digest: sbom.digest,
        size: sbom.bytes.length,
        artifactType: SBOM,
        annotations: { 'org.example.format': 'spdx' },
      },
    ]);
  });

  it("re-reads the fallback tag before writing and after: a concurrent writer's entry survives", async () => {
    await start({ referrers: {} }, {});
    const { index } = seedIndex(src);
    const sig = attach(src, 'team/app', index, { configType: SIG, payload: 'sig' });
    dst.putManifest('app', index.digest, index.bytes, OCI_INDEX);
    const other = attach(dst, 'app', index, { artifactType: 'application/vnd.example.other', payload: 'other' });
    const late = attach(dst, 'app', index, { artifactType: 'application/vnd.example.late', payload: 'late' });
    const tagPath = `/v2/app/manifests/sha256-${hex(index.digest)}`;
    let heads = 0;
    dst.onRequest = (q) => {
      if (q.method !== 'HEAD' || q.url !== tagPath) return;
      heads++;
      // (HEAD 1 is the plan's check) between our read and our write: another client creates the tag
      if (heads === 2) fallbackTag(dst, 'app', index.digest, [{ digest: other.digest, size: other.bytes.length }]);
      // (HEAD 3 is the re-read of the second attempt) between our write and our check: another client overwrites it without our entry
      if (heads === 4)
        fallbackTag(dst, 'app', index.digest, [
          { digest: other.digest, size: other.bytes.length },
          { digest: late.digest, size: late.bytes.length },
        ]);
    };
    await run({ includeReferrers: true });
    expect(heads).toBe(6);
    expect(entries(dst, 'app', index.digest).map((e) => e.digest)).toEqual([other.digest, late.digest, sig.digest]);
  });

  it('copies cosign tags (.sig/.att) and writes them on the target; refuses to move one without force', async () => {
    await start();
    const { index } = seedIndex(src);
    const legacy = (payload: string) => {
      const layer = Buffer.from(payload);
      const config = Buffer.from('{"architecture":"","os":""}');
      const bytes = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: {
            mediaType: 'application/vnd.oci.image.config.v1+json',
            digest: src.putBlob('team/app', config),
            size: config.length,
          },
          layers: [
            {
              mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
              digest: src.putBlob('team/app', layer),
              size: layer.length,
              annotations: { 'dev.cosignproject.cosign/signature': 'MEUCIQ' },
            },
          ],
        }),
      );
      return { bytes, digest: sha(bytes) };
    };
    const sig = legacy('{"critical":{"image":{"docker-manifest-digest":"x"}}}');
    src.putManifest('team/app', `sha256-${hex(index.digest)}.sig`, sig.bytes, OCI_MANIFEST);
    const att = legacy('{"payloadType":"application/vnd.in-toto+json"}');
    src.putManifest('team/app', `sha256-${hex(index.digest)}.att`, att.bytes, OCI_MANIFEST);

    const r = await run({ includeReferrers: true, referrerTypes: [COSIGN_TAGS.sig] });
    expect(r.plan.referrers).toEqual([
      expect.objectContaining({
        digest: sig.digest,
        via: 'cosign',
        tag: `sha256-${hex(index.digest)}.sig`,
        artifactType: COSIGN_TAGS.sig,
        subject: index.digest,
      }),
    ]);
    expect(dst.tags('app')).toEqual(['1', `sha256-${hex(index.digest)}.sig`]);
    expect(dst.getManifest('app', `sha256-${hex(index.digest)}.sig`)!.digest).toBe(sig.digest);

    // upstream re-signs: the .sig tag moves only with force (and the refusal comes before any copy)
    const resigned = legacy('{"critical":{"image":{"docker-manifest-digest":"y"}}}');
    src.putManifest('team/app', `sha256-${hex(index.digest)}.sig`, resigned.bytes, OCI_MANIFEST);
    await expect(run({ includeReferrers: true })).rejects.toMatchObject({
      code: 'TAG_EXISTS',
      message: expect.stringContaining('.sig'),
    });
    expect(dst.getManifest('app', resigned.digest)).toBeUndefined();
    await run({ includeReferrers: true, force: true });
    expect(dst.getManifest('app', `sha256-${hex(index.digest)}.sig`)!.digest).toBe(resigned.digest);
    expect(dst.getManifest('app', `sha256-${hex(index.digest)}.att`)!.digest).toBe(att.digest);
  });

  it('with a platform filter: referrers of the platforms imported, not of the source index', async () => {
    await start({ referrers: {} }, { referrers: {} });
    const { index, amd64, arm64 } = seedIndex(src);
    attach(src, 'team/app', index, { configType: SIG, payload: 'index sig' });
    const amdSig = attach(src, 'team/app', amd64, { configType: SIG, payload: 'amd64 sig' });
    attach(src, 'team/app', arm64, { configType: SIG, payload: 'arm64 sig' });
    const r = await run({ includeReferrers: true, platforms: ['linux/amd64'] });
    expect(r.digest).toBe(amd64.digest);
    expect(r.plan.referrers!.map((x) => x.digest)).toEqual([amdSig.digest]);
    expect(r.plan.notes.join('\n')).toContain(`referrers of the source index ${index.digest} are not copied`);
    expect(referrerGets().map((q) => q.url)).not.toContain(`/v2/team/app/referrers/${index.digest}`);
  });

  it('a referrer that is an index (an attestation index): its children first, then it; referrers of it followed', async () => {
    await start({ referrers: {} }, { referrers: {} });
    const { index } = seedIndex(src);
    const statement = attach(src, 'team/app', index, {
      artifactType: 'application/vnd.in-toto+json',
      payload: 'statement',
    });
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        artifactType: 'application/vnd.example.attestations',
        manifests: [{ mediaType: OCI_MANIFEST, digest: statement.digest, size: statement.bytes.length }],
        subject: { mediaType: OCI_INDEX, digest: index.digest, size: index.bytes.length },
      }),
    );
    const attestations = {
      digest: src.putManifest('team/app', sha(bytes), bytes, OCI_INDEX),
      bytes,
      mediaType: OCI_INDEX,
    };
    const signed = attach(src, 'team/app', attestations, { configType: SIG, payload: 'signature of the attestations' });
    const r = await run({ includeReferrers: true, referrerTypes: ['application/vnd.example.attestations', SIG] });
    expect(r.plan.referrers!.map((x) => [x.digest, x.subject])).toEqual([
      [attestations.digest, index.digest],
      [signed.digest, attestations.digest],
    ]);
    const order: string[] = r.plan.manifests.map((m) => m.digest);
    expect(order.indexOf(statement.digest)).toBeLessThan(order.indexOf(attestations.digest));
    expect(order.indexOf(index.digest)).toBeLessThan(order.indexOf(attestations.digest));
    expect(Buffer.from(dst.getManifest('app', attestations.digest)!.bytes).equals(bytes)).toBe(true);
    expect(dst.referrersOf('app', attestations.digest).map((d) => d.digest)).toEqual([signed.digest]);
  });

  it('referrers count against MAX_MANIFESTS and MAX_BLOBS', async () => {
    await start({ referrers: {} }, {});
    const { index } = seedIndex(src);
    for (let i = 0; i < 3; i++) attach(src, 'team/app', index, { configType: SIG, payload: `sig ${i}` });
    await expect(run({ includeReferrers: true }, { maxManifests: 4 })).rejects.toMatchObject({
      code: 'TOO_MANY_MANIFESTS',
      message: expect.stringContaining('with its referrers has more than 4 manifests (MAX_MANIFESTS)'),
    });
    // 2 children + 3 referrers = 5 manifests; 4 image blobs + 1 shared empty config + 3 payloads = 8 blobs
    await expect(run({ includeReferrers: true }, { maxManifests: 5, maxBlobs: 7 })).rejects.toMatchObject({
      code: 'TOO_MANY_BLOBS',
    });
    expect((await run({ includeReferrers: true }, { maxManifests: 5, maxBlobs: 8 })).plan.blobs).toHaveLength(8);
    expect(dst.requests.filter((q) => q.method === 'PUT' && q.url.includes('sha256-'))).toHaveLength(1);
  });

  it('copies no manifest a fallback index lists under another subject; a fallback tag that is the subject itself means none', async () => {
    await start();
    const { index, amd64 } = seedIndex(src);
    const elsewhere = attach(src, 'team/app', amd64, { configType: SIG, payload: 'signature of amd64' });
    fallbackTag(src, 'team/app', index.digest, [
      { digest: elsewhere.digest, size: elsewhere.bytes.length, artifactType: SIG },
    ]);
    // a registry that answers the fallback tag of amd64 with amd64 itself (oras-project/oras #2148)
    src.putManifest('team/app', `sha256-${hex(amd64.digest)}`, amd64.bytes, OCI_MANIFEST);
    const r = await run({ includeReferrers: true });
    expect(r.plan.referrers).toEqual([]);
    const notes = r.plan.notes.join('\n');
    expect(notes).toContain(
      `${elsewhere.digest} is listed by fallback tag sha256-${hex(index.digest)} as a referrer of ${index.digest}, but its subject is ${amd64.digest}`,
    );
    expect(notes).toContain('not the OCI index of a referrers list; taken as no referrers');
    expect(dst.getManifest('app', elsewhere.digest)).toBeUndefined();
  });

  it("refuses before copying when the target's fallback tag is not a referrers index", async () => {
    await start();
    const { index, amd64 } = seedIndex(src);
    const sig = attach(src, 'team/app', index, { configType: SIG, payload: 'sig' });
    fallbackTag(src, 'team/app', index.digest, [{ digest: sig.digest, size: sig.bytes.length }]);
    dst.putManifest('app', `sha256-${hex(index.digest)}`, amd64.bytes, OCI_MANIFEST);
    await expect(run({ includeReferrers: true })).rejects.toMatchObject({
      code: 'REFERRERS_TAG_INVALID',
      message: expect.stringContaining(`app:sha256-${hex(index.digest)}`),
    });
    expect(dst.requests.filter((q) => q.method === 'PUT' || q.method === 'POST')).toEqual([]);
  });
});
