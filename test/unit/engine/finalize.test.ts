/**
 * Finalize against a scripted target: manifests by digest (children first, skipped when present), then
 * tags (left alone when they already point at the digest), and nothing past its deadline.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { finalize, tagCheckWithLastBlob } from '../../../lib/engine/finalize.js';
import type { ImportPlan } from '../../../lib/engine/types.js';
import { TimeoutError } from '../../../lib/errors.js';
import type { Digest } from '../../../lib/oci/digest.js';
import { RegistryClient } from '../../../lib/oci/registry.js';
import { deadlineSignal } from '../../../lib/retry.js';
import { scripted, type Answer, type Exchange, type ScriptedPeer } from '../../support/scripted.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;
const child = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}');
const index = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [{ mediaType: OCI_MANIFEST, digest: sha(child), size: child.length }],
  }),
);

const thePlan = (host: string, force = false): ImportPlan => ({
  version: 1,
  source: { registry: 'src.example', repository: 'app', reference: '1' },
  target: {
    registry: host,
    refs: [
      { repository: 'app', tag: '1' },
      { repository: 'app', tag: 'stable' },
    ],
  },
  root: { digest: sha(index), mediaType: OCI_INDEX },
  manifests: [
    { digest: sha(child), mediaType: OCI_MANIFEST, bytes: child.toString('base64') },
    { digest: sha(index), mediaType: OCI_INDEX, bytes: index.toString('base64') },
  ],
  blobs: [],
  force,
  notes: [],
});

describe('finalize (scripted target)', () => {
  let target: ScriptedPeer | undefined;
  afterEach(async () => {
    await target?.close();
    target = undefined;
  });

  it('children first, a present manifest skipped, a tag already there left alone, the other written', async () => {
    target = await scripted([
      // the HEADs of the manifests below the root at once, then the missing ones level by level (the child is there)
      {
        req: { method: 'HEAD', path: `/v2/app/manifests/${sha(child)}` },
        res: { status: 200, headers: { 'docker-content-digest': sha(child) } },
      },
      // the HEADs of every tag at once, then the PUTs of those to write: the root goes in by its tag, not by digest
      [
        {
          req: { method: 'HEAD', path: '/v2/app/manifests/1' },
          res: { status: 200, headers: { 'docker-content-digest': sha(index) } },
        },
        { req: { method: 'HEAD', path: '/v2/app/manifests/stable' }, res: { status: 404 } },
      ],
      {
        req: {
          method: 'PUT',
          path: '/v2/app/manifests/stable',
          headers: { 'content-type': OCI_INDEX },
          body: index.toString(),
        },
        res: { status: 201 },
      },
    ]);
    const client = new RegistryClient({ registry: target.host, insecure: true });
    expect(await finalize(thePlan(target.host), client)).toMatchObject({
      tagged: ['app:stable'],
      unchanged: ['app:1'],
    });
    target.verify();
  });

  it('the root by digest when a target names no tag (by-digest import), and then only the tags of the others', async () => {
    const plan = thePlan('', true);
    target = await scripted([
      putChild({ status: 201 }),
      // `app` is imported by digest: the root PUT by its digest there; `web:1` gets it by its tag
      { req: { method: 'PUT', path: `/v2/app/manifests/${sha(index)}`, body: index.toString() }, res: { status: 201 } },
      { req: { method: 'PUT', path: `/v2/web/manifests/${sha(child)}`, body: child.toString() }, res: { status: 201 } },
      { req: { method: 'HEAD', path: '/v2/web/manifests/1' }, res: { status: 404 } },
      { req: { method: 'PUT', path: '/v2/web/manifests/1', body: index.toString() }, res: { status: 201 } },
    ]);
    const client = new RegistryClient({ registry: target.host, insecure: true });
    const refs = [{ repository: 'app' }, { repository: 'web', tag: '1' }];
    expect(await finalize({ ...plan, target: { registry: target.host, refs } }, client, { fresh: true })).toMatchObject(
      { tagged: ['web:1'] },
    );
    target.verify();
  });

  it('refuses to move a tag that points elsewhere without force', async () => {
    target = await scripted([
      { req: { method: 'HEAD', path: `/v2/app/manifests/${sha(child)}` }, res: { status: 200 } },
      [
        {
          req: { method: 'HEAD', path: '/v2/app/manifests/1' },
          res: { status: 200, headers: { 'docker-content-digest': `sha256:${'9'.repeat(64)}` } },
        },
        { req: { method: 'HEAD', path: '/v2/app/manifests/stable' }, res: { status: 404 } },
      ],
    ]);
    await expect(
      finalize(thePlan(target.host), new RegistryClient({ registry: target.host, insecure: true })),
    ).rejects.toMatchObject({ code: 'TAG_EXISTS', side: 'target' });
    target.verify();
  });

  const blobUnknown: Answer = {
    status: 400,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      errors: [
        { code: 'DIGEST_INVALID', message: 'provided digest did not match uploaded content' },
        { code: 'MANIFEST_BLOB_UNKNOWN', message: 'blob unknown to registry', detail: `sha256:${'1'.repeat(64)}` },
      ],
    }),
  };
  const putChild = (res: Answer): Exchange => ({
    req: { method: 'PUT', path: `/v2/app/manifests/${sha(child)}`, body: child.toString() },
    res,
  });

  it('a manifest PUT refused for a blob it lists, which the import saw in place: tried again, and the import ends', async () => {
    target = await scripted([
      putChild(blobUnknown),
      putChild({ status: 201, headers: { 'docker-content-digest': sha(child) } }),
      [
        { req: { method: 'HEAD', path: '/v2/app/manifests/1' }, res: { status: 404 } },
        { req: { method: 'HEAD', path: '/v2/app/manifests/stable' }, res: { status: 404 } },
      ],
      [
        { req: { method: 'PUT', path: '/v2/app/manifests/1' }, res: { status: 201 } },
        { req: { method: 'PUT', path: '/v2/app/manifests/stable' }, res: { status: 201 } },
      ],
    ]);
    const client = new RegistryClient({ registry: target.host, insecure: true });
    expect(await finalize(thePlan(target.host), client, { fresh: true })).toMatchObject({
      tagged: ['app:1', 'app:stable'],
    });
    target.verify();
  });

  it('a blob that stays unknown: the PUT is refused on every attempt and the import fails with the registry code', async () => {
    target = await scripted(Array.from({ length: 5 }, () => putChild(blobUnknown)));
    const client = new RegistryClient({ registry: target.host, insecure: true });
    await expect(finalize(thePlan(target.host), client, { fresh: true })).rejects.toMatchObject({
      code: 'DIGEST_INVALID',
      status: 400,
    });
    target.verify(); // five PUTs (DEFAULT_RETRY), nothing after them
  });

  it("a manifest PUT answered 503 every time: five PUTs, the settling loop's, not five of the client's per attempt", async () => {
    target = await scripted(Array.from({ length: 5 }, () => putChild({ status: 503 })));
    const client = new RegistryClient({
      registry: target.host,
      insecure: true,
      retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
    });
    await expect(finalize(thePlan(target.host), client, { fresh: true })).rejects.toMatchObject({
      status: 503,
      temporary: true,
    });
    target.verify(); // 5 (DEFAULT_RETRY's attempts), not 5 × 3
  });

  it('any other refusal of a manifest PUT is not tried again', async () => {
    target = await scripted([
      putChild({
        status: 400,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ errors: [{ code: 'MANIFEST_INVALID', message: 'manifest invalid' }] }),
      }),
    ]);
    const client = new RegistryClient({ registry: target.host, insecure: true });
    await expect(finalize(thePlan(target.host), client, { fresh: true })).rejects.toMatchObject({
      code: 'MANIFEST_INVALID',
    });
    target.verify();
  });

  it('honours its deadline: a target that never answers ends the step at the deadline, not at a request timeout', async () => {
    target = await scripted([
      { req: { method: 'HEAD', path: `/v2/app/manifests/${sha(child)}` }, res: { hang: true } },
    ]);
    const client = new RegistryClient({
      registry: target.host,
      insecure: true,
      timeouts: { idleMs: 60_000, minBytesPerSecond: 1, rateWindowMs: 30_000 },
    });
    const deadline = deadlineSignal(300, () => new TimeoutError('the finalize step is past its budget'));
    const t0 = Date.now();
    await expect(finalize(thePlan(target.host), client, { signal: deadline.signal })).rejects.toBeInstanceOf(
      TimeoutError,
    );
    expect(Date.now() - t0).toBeLessThan(5000);
    deadline.clear();
    target.verify(); // the child's HEAD was sent (the root goes in by its tags), and nothing after it
  });
});

describe("the tags' check with the last blob's closing request (tagCheckWithLastBlob)", () => {
  const single = (refs: ImportPlan['target']['refs'], referrers = false): ImportPlan => ({
    ...thePlan('r.example'),
    target: { registry: 'r.example', refs },
    root: { digest: sha(child), mediaType: OCI_MANIFEST },
    manifests: [{ digest: sha(child), mediaType: OCI_MANIFEST, bytes: child.toString('base64') }],
    ...(referrers
      ? {
          referrers: [
            { digest: sha(index), mediaType: OCI_INDEX, size: index.length, subject: sha(child), via: 'api' },
          ],
        }
      : {}),
  });

  it("only where the tags' PUT is finalize's first write: one manifest, by its tags, one repository, no referrers", () => {
    expect(tagCheckWithLastBlob(single([{ repository: 'app', tag: '1' }]))).toBe(true);
    expect(
      tagCheckWithLastBlob(
        single([
          { repository: 'app', tag: '1' },
          { repository: 'app', tag: 'stable' },
        ]),
      ),
    ).toBe(true);
    // an index: its children go in first
    expect(tagCheckWithLastBlob(thePlan('r.example'))).toBe(false);
    // two repositories, a by-digest target, referrers linked before the tags move
    expect(
      tagCheckWithLastBlob(
        single([
          { repository: 'app', tag: '1' },
          { repository: 'mirror/app', tag: '1' },
        ]),
      ),
    ).toBe(false);
    expect(tagCheckWithLastBlob(single([{ repository: 'app' }]))).toBe(false);
    expect(tagCheckWithLastBlob(single([{ repository: 'app', tag: '1' }], true))).toBe(false);
  });
});
