/**
 * Referrers between REAL registries (CNCF distribution 2.8: no referrers API, so the fallback tag path end
 * to end), every result checked by skopeo: a multi-platform index carrying a cosign-style signature
 * (attached by `subject` and listed under the fallback tag `sha256-<hex>` on the source) imported with
 * --include-referrers, through `POST /api/imports` with includeReferrers, and through a sync rule.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createImportVia } from '../support/create-import.js';
import { setImportService } from '../../lib/service/runtime.js';
import { runCli } from '../support/cli.js';
import { buildImage, type BuiltImage } from '../support/fixtures.js';
import { hex, OCI_INDEX, pushFallbackTag, pushSignature, SIG, type Ref } from '../support/referrer-fixtures.js';
import { requireRegistryTools, startRegistry, type RunningRegistry } from '../support/registry.js';
import { testService } from '../support/service.js';
import { inspectRaw, manifestDigest, pushOciLayout } from '../support/skopeo.js';

const hasTools = requireRegistryTools();

describe.skipIf(!hasTools)('referrers between real registries (distribution 2.8: fallback tags)', () => {
  let src: RunningRegistry;
  let dst: RunningRegistry;
  let work: string;
  let img: BuiltImage;
  let subject: Ref;
  let signature: Ref & { blobs: string[] };
  let sourceTag: Ref;
  const env = () => ({ INSECURE_REGISTRIES: `${src.host},${dst.host}`, CHUNK_SIZE: '64KiB' });
  const fallback = () => `sha256-${hex(img.digest)}`;
  const tags = async (repo: string): Promise<string[]> =>
    (
      (await fetch(`http://${dst.host}/v2/${repo}/tags/list`).then((r) => r.json())) as { tags?: string[] | null }
    ).tags?.sort() ?? [];
  const listedBy = async (repo: string): Promise<string[]> =>
    (
      JSON.parse((await inspectRaw(`${dst.host}/${repo}:${fallback()}`)).toString()) as {
        manifests: { digest: string }[];
      }
    ).manifests.map((m) => m.digest);

  /** The signature on the target: same bytes (so same digest), subject = the index, blobs there. */
  const expectSignature = async (repo: string, sig: Ref & { blobs: string[] }) => {
    const raw = await inspectRaw(`${dst.host}/${repo}@${sig.digest}`);
    expect(raw.equals(sig.bytes)).toBe(true);
    expect((JSON.parse(raw.toString()) as { subject: { digest: string } }).subject.digest).toBe(img.digest);
    for (const blob of sig.blobs)
      expect((await fetch(`http://${dst.host}/v2/${repo}/blobs/${blob}`, { method: 'HEAD' })).status).toBe(200);
  };

  beforeAll(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    work = await mkdtemp(join(tmpdir(), 'oci-import-referrers-'));
    img = await buildImage({
      dir: join(work, 'img'),
      seed: 'signed',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
      layerSize: 50_000,
    });
    await pushOciLayout(img.layoutDir, `${src.host}/team/signed:1.0`);
    subject = { digest: img.digest, bytes: img.manifestBytes, mediaType: img.mediaType };
    signature = await pushSignature(src.host, 'team/signed', subject, 'signed by the release pipeline');
    sourceTag = await pushFallbackTag(src.host, 'team/signed', img.digest, [signature]);
  });

  afterAll(async () => {
    setImportService(undefined);
    await Promise.all([src?.stop(), dst?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('the source is what the test means: no referrers API, the signature under the fallback tag', async () => {
    expect((await fetch(`http://${src.host}/v2/team/signed/referrers/${img.digest}`)).status).toBe(404);
    expect((await inspectRaw(`${src.host}/team/signed:${fallback()}`)).equals(sourceTag.bytes)).toBe(true);
  });

  it('--include-referrers into an empty registry: the signature, its blobs and the fallback tag; the image digest unchanged', async () => {
    const run = await runCli(
      [
        'import',
        '--source',
        `${src.host}/team/signed:1.0`,
        '--target',
        dst.host,
        '--image',
        'mirror/signed:1.0',
        '--include-referrers',
        '--json',
      ],
      env(),
    );
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { digest: string; referrers: unknown[] };
    expect(out.digest).toBe(img.digest);
    expect(out.referrers).toEqual([{ digest: signature.digest, artifactType: SIG, subject: img.digest }]);
    expect(await manifestDigest(`${dst.host}/mirror/signed:1.0`)).toBe(img.digest);
    await expectSignature('mirror/signed', signature);
    // the target's fallback tag is the source's index, byte for byte
    expect((await inspectRaw(`${dst.host}/mirror/signed:${fallback()}`)).equals(sourceTag.bytes)).toBe(true);
    expect(await tags('mirror/signed')).toEqual(['1.0', fallback()]);
  });

  it('without the option nothing extra is written', async () => {
    const run = await runCli(
      ['import', '--source', `${src.host}/team/signed:1.0`, '--target', dst.host, '--image', 'plain/signed:1.0'],
      env(),
    );
    expect(run.code, run.stderr).toBe(0);
    expect(await tags('plain/signed')).toEqual(['1.0']);
    expect(
      (
        await fetch(`http://${dst.host}/v2/plain/signed/manifests/${signature.digest}`, {
          method: 'HEAD',
          headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
        })
      ).status,
    ).toBe(404);
    expect(await manifestDigest(`${dst.host}/plain/signed:1.0`)).toBe(img.digest);
  });

  it('merges into a fallback tag the target has: its entry kept, ours added once', async () => {
    // the target already holds the image with a signature of its own, listed under its fallback tag
    await runCli(
      ['import', '--source', `${src.host}/team/signed:1.0`, '--target', dst.host, '--image', 'merged/signed:1.0'],
      env(),
    );
    const own = await pushSignature(dst.host, 'merged/signed', subject, 'signed on the target');
    await pushFallbackTag(dst.host, 'merged/signed', img.digest, [own]);
    for (let i = 0; i < 2; i++) {
      const run = await runCli(
        [
          'import',
          '--source',
          `${src.host}/team/signed:1.0`,
          '--target',
          dst.host,
          '--image',
          'merged/signed:1.0',
          '--include-referrers',
        ],
        env(),
      );
      expect(run.code, run.stderr).toBe(0);
    }
    expect(await listedBy('merged/signed')).toEqual([own.digest, signature.digest]);
    await expectSignature('merged/signed', signature);
  });

  it('the same through POST /api/imports with includeReferrers', async () => {
    const t = testService({
      TARGET_REGISTRY: dst.host,
      INSECURE_REGISTRIES: `${src.host},${dst.host}`,
      ALLOWED_SOURCES: src.host,
    });
    setImportService(t.service);
    const res = await createImportVia(
      t.queue,
      new HttpRequest({
        method: 'POST',
        url: 'http://127.0.0.1:7071/api/imports',
        headers: { 'content-type': 'application/json' },
        body: {
          string: JSON.stringify({
            source: `${src.host}/team/signed:1.0`,
            images: ['api/signed:1.0'],
            includeReferrers: true,
          }),
        },
      }),
      new InvocationContext({ functionName: 'createImport', invocationId: 'it', logHandler: () => undefined }),
    );
    expect(res.status).toBe(202);
    for (let round = 0; round < 50 && t.queue.sent.length; round++) {
      for (const m of t.queue.drain()) await t.service.handleMessage(m, t.meta());
    }
    const status = await t.service.status((res.jsonBody as { id: string }).id);
    expect(status).toMatchObject({
      status: 'succeeded',
      digest: img.digest,
      referrers: [{ digest: signature.digest, subject: img.digest }],
    });
    expect(status!.progress.manifests).toBe(4);
    expect(await manifestDigest(`${dst.host}/api/signed:1.0`)).toBe(img.digest);
    await expectSignature('api/signed', signature);
    expect(await listedBy('api/signed')).toEqual([signature.digest]);
  });

  it('the same through a sync rule, and a signature added upstream later comes with the next pass', async () => {
    const rules = join(work, 'rules.json');
    await writeFile(
      rules,
      JSON.stringify({ rules: [{ source: `${src.host}/team/signed`, target: 'sync/signed', referrers: true }] }),
    );
    const first = await runCli(['sync', '--rules', rules, '--target', dst.host, '--json'], env());
    expect(first.code, first.stderr + first.stdout).toBe(0);
    // the fallback tag is not an image of its own: one item, the image
    expect(
      (JSON.parse(first.stdout) as { items: { tag: string; outcome: string }[] }).items.map((i) => [i.tag, i.outcome]),
    ).toEqual([['1.0', 'imported']]);
    await expectSignature('sync/signed', signature);
    expect(await listedBy('sync/signed')).toEqual([signature.digest]);

    const quiet = await runCli(['sync', '--rules', rules, '--target', dst.host, '--json'], env());
    expect((JSON.parse(quiet.stdout) as { items: { outcome: string }[] }).items.map((i) => i.outcome)).toEqual([
      'unchanged',
    ]);

    const later = await pushSignature(src.host, 'team/signed', subject, 'countersigned by security');
    await pushFallbackTag(src.host, 'team/signed', img.digest, [signature, later]);
    const next = await runCli(['sync', '--rules', rules, '--target', dst.host, '--json'], env());
    expect(next.code, next.stderr).toBe(0);
    expect((JSON.parse(next.stdout) as { items: { outcome: string; reason?: string }[] }).items).toEqual([
      expect.objectContaining({ outcome: 'imported', reason: 'referrers' }),
    ]);
    await expectSignature('sync/signed', later);
    expect(await listedBy('sync/signed')).toEqual([signature.digest, later.digest]);
    expect(
      (JSON.parse((await inspectRaw(`${dst.host}/sync/signed:${fallback()}`)).toString()) as { mediaType: string })
        .mediaType,
    ).toBe(OCI_INDEX);
    expect(await manifestDigest(`${dst.host}/sync/signed:1.0`)).toBe(img.digest);
  });
});
