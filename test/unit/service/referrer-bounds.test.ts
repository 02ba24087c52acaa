/**
 * Referrer discovery and notes are bounded whatever a source claims (issue 22, finding 4), against a hostile
 * in-test registry: a referrers page of thousands of manifests whose `subject` is another image costs at most the
 * documented reads (10 × (MAX_MANIFESTS + 1)), each listed digest is fetched once, those of another subject are
 * dropped, a plan keeps at most 20 notes plus "…and N more", and the job record stays under 64 KiB — also for a
 * manifest of 20,000 non-distributable layers.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { REFERRER_READS_PER_MANIFEST } from '../../../lib/engine/referrers.js';
import { startFakeRegistry, type FakeRegistry } from '../../support/fake-registry.js';
import { testService, type TestService } from '../../support/service.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const KIB64 = 64 * 1024;

interface Content {
  readonly bytes: Buffer;
  readonly mediaType: string;
}

/** A registry that serves `manifests` and `blobs` by digest (and tag `1`), and `referrers(digest)` as its referrers API. */
async function hostile(o: {
  manifests: Map<string, Content>;
  blobs: Map<string, Buffer>;
  root: string;
  referrers?: (digest: string) => Buffer | undefined;
}) {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const m = /^\/v2\/team\/app\/(manifests|blobs|referrers)\/(.+)$/.exec(path);
    const ref = m?.[2] === '1' ? o.root : m?.[2];
    const found =
      m?.[1] === 'manifests'
        ? o.manifests.get(ref!)
        : m?.[1] === 'blobs' && o.blobs.has(ref!)
          ? { bytes: o.blobs.get(ref!)!, mediaType: 'application/octet-stream' }
          : undefined;
    if (m?.[1] === 'referrers') {
      const list = o.referrers?.(ref!);
      if (!list) return void res.writeHead(404).end();
      return void res.writeHead(200, { 'content-type': OCI_INDEX, 'content-length': String(list.length) }).end(list);
    }
    if (!found) return void res.writeHead(404).end();
    res.writeHead(200, {
      'content-type': found.mediaType,
      'content-length': String(found.bytes.length),
      'docker-content-digest': sha(found.bytes),
    });
    res.end(req.method === 'HEAD' ? undefined : found.bytes);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** An image (config + one layer) and its content maps. */
function image(layers: object[] = []) {
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const layer = Buffer.from('a layer');
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.length },
        ...layers,
      ],
    }),
  );
  const manifests = new Map<string, Content>([[sha(manifest), { bytes: manifest, mediaType: OCI_MANIFEST }]]);
  const blobs = new Map<string, Buffer>([
    [sha(config), config],
    [sha(layer), layer],
  ]);
  return { root: sha(manifest), manifests, blobs };
}

/** An artifact manifest whose subject is `subject` (not the image it is listed for). */
function artifact(n: number, subject: string): Content {
  const empty = Buffer.from('{}');
  return {
    mediaType: OCI_MANIFEST,
    bytes: Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: 'application/vnd.example.sig',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha(empty), size: 2 },
        layers: [],
        subject: { mediaType: OCI_MANIFEST, digest: subject, size: 1 },
        annotations: { n: String(n) },
      }),
    ),
  };
}

describe('referrer discovery and notes are bounded (hostile in-test registry)', () => {
  const closers: (() => Promise<void>)[] = [];
  let dst: FakeRegistry;
  afterEach(async () => {
    await Promise.all([...closers.splice(0).map((c) => c()), dst?.close()]);
  });

  const service = async (src: string): Promise<TestService> => {
    dst = await startFakeRegistry();
    return testService({ TARGET_REGISTRY: dst.host, INSECURE_REGISTRIES: `${src},${dst.host}`, ALLOWED_SOURCES: src });
  };
  const recordBytes = (t: TestService, id: string) => Buffer.byteLength(t.docs.dump().get(`${id}/job.json`) ?? '');

  /** `distinct` manifests of another subject, each listed `times` times on the image's referrers page. */
  const listing = async (distinct: number, times: number) => {
    const img = image();
    const other = `sha256:${'e'.repeat(64)}`;
    const listed: object[] = [];
    for (let n = 0; n < distinct; n++) {
      const a = artifact(n, other);
      img.manifests.set(sha(a.bytes), a);
      for (let k = 0; k < times; k++)
        listed.push({
          mediaType: OCI_MANIFEST,
          digest: sha(a.bytes),
          size: a.bytes.length,
          artifactType: 'application/vnd.example.sig',
        });
    }
    const page = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: listed }));
    const src = await hostile({ ...img, referrers: (d) => (d === img.root ? page : undefined) });
    closers.push(src.close);
    return { src, img };
  };

  it('3,000 listed referrers of another subject (100 digests, each 30 times): each fetched once, all dropped, 20 notes and "…and 80 more", a record under 64 KiB', async () => {
    const { src } = await listing(100, 30);
    const t = await service(src.host);
    const job = await t.service.submit(
      { source: `${src.host}/team/app:1`, images: ['app:1'], includeReferrers: true },
      'http',
    );
    await t.service.handleMessage(t.queue.drain()[0]!, t.meta());
    const gets = src.requests.filter((r) => r.startsWith('GET /v2/team/app/manifests/sha256:') && !r.endsWith(job.id));
    const perDigest = new Map<string, number>();
    for (const g of gets) perDigest.set(g, (perDigest.get(g) ?? 0) + 1);
    process.stdout.write(
      `[3,000 wrong-subject entries, 100 digests] ${src.requests.length} requests to the source, ${gets.length} manifest GETs\n`,
    );
    expect(Math.max(...perDigest.values())).toBe(1);
    expect(src.requests.length).toBeLessThanOrEqual(REFERRER_READS_PER_MANIFEST * 51 + 5);
    const view = await t.service.status(job.id);
    expect(view).toMatchObject({ status: 'running', progress: { manifests: 1 } });
    expect(view!.referrers).toEqual([]);
    expect(view!.notes).toHaveLength(21);
    expect(view!.notes![20]).toBe('…and 80 more');
    expect(view!.notes![0]).toMatch(
      /is listed by the referrers API as a referrer of sha256:[0-9a-f]{64}, but its subject is sha256:e{64}; not copied/,
    );
    expect(recordBytes(t, job.id)).toBeLessThan(KIB64);
    expect(Buffer.byteLength(JSON.stringify(view))).toBeLessThan(KIB64);
  });

  it('3,000 distinct listed referrers of another subject: the plan stops at the documented 510 reads (TOO_MANY_REFERRERS)', async () => {
    const { src } = await listing(3000, 1);
    const t = await service(src.host);
    const job = await t.service.submit(
      { source: `${src.host}/team/app:1`, images: ['app:1'], includeReferrers: true },
      'http',
    );
    await t.service.handleMessage(t.queue.drain()[0]!, t.meta());
    const reads = src.requests.filter((r) => r.includes('/referrers/') || /\/manifests\/sha256[-:]/.test(r)).length;
    process.stdout.write(
      `[3,000 distinct wrong-subject entries] ${src.requests.length} requests to the source (${reads} discovery reads)\n`,
    );
    expect(await t.service.status(job.id)).toMatchObject({ status: 'failed', error: { code: 'TOO_MANY_REFERRERS' } });
    // the root manifest (HEAD and GET), then discovery's budget: 10 × (MAX_MANIFESTS 50 + 1)
    expect(reads).toBeLessThanOrEqual(REFERRER_READS_PER_MANIFEST * 51 + 1);
    expect(src.requests.length).toBeLessThanOrEqual(REFERRER_READS_PER_MANIFEST * 51 + 5);
    expect(recordBytes(t, job.id)).toBeLessThan(KIB64);
  });

  it('a manifest of 20,000 non-distributable layers: 20 notes and "…and 19,980 more"; the record and a list page of 25 stay small', async () => {
    const layers = Array.from({ length: 20_000 }, (_, i) => ({
      mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
      digest: sha(`foreign ${i}`),
      size: 1,
      urls: ['https://x.example/l'],
    }));
    const img = image(layers);
    expect(img.manifests.get(img.root)!.bytes.length).toBeLessThan(4 * 1024 * 1024);
    const src = await hostile(img);
    closers.push(src.close);
    const t = await service(src.host);
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) {
      const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: [`app:${i}`] }, 'http');
      ids.push(job.id);
      await t.service.handleMessage(
        t.queue.drain().find((m) => m.step === 'plan')!,
        t.meta(),
      );
      t.queue.drain();
    }
    const view = await t.service.status(ids[0]!);
    expect(view!.notes).toHaveLength(21);
    expect(view!.notes![20]).toBe('…and 19980 more');
    const sizes = ids.map((id) => recordBytes(t, id));
    const page = await t.service.list({ limit: 25 });
    const pageBytes = Buffer.byteLength(JSON.stringify(page));
    process.stdout.write(
      `[20,000 foreign layers] job record ${Math.max(...sizes)} bytes, list page of 25 ${pageBytes} bytes\n`,
    );
    expect(Math.max(...sizes)).toBeLessThan(KIB64);
    expect(page.value).toHaveLength(25);
    expect(pageBytes).toBeLessThan(25 * 8 * 1024);
  });
});
