/**
 * Referrers at the protocol level: the tag names (spec "Referrers Tag Schema" table, cosign's tags), the
 * descriptor a referrers list holds for a manifest, what a referrers index must be, and the client's
 * `listReferrers` against a scripted peer — API absent (404, 405, not an index), pages on its own origin
 * only, the filter header, the quota — and `OCI-Subject` on a manifest PUT.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { Digest } from '../../../lib/oci/digest.js';
import { manifestFrom } from '../../../lib/oci/manifest.js';
import {
  COSIGN_TAGS,
  cosignTag,
  isReferrersTag,
  mergedReferrersIndex,
  referrerDescriptor,
  referrersIndexEntries,
  referrersTag,
  typeMatches,
} from '../../../lib/oci/referrers.js';
import { RegistryClient } from '../../../lib/oci/registry.js';
import { scripted, type ScriptedPeer } from '../../support/scripted.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const sha = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}` as Digest;
const A = `sha256:${'a'.repeat(64)}` as Digest;
const retry = { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5 };
const index = (manifests: object[], extra: object = {}) =>
  JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests, ...extra });
const desc = (d: string, artifactType?: string) => ({
  mediaType: OCI_MANIFEST,
  digest: d as Digest,
  size: 10,
  ...(artifactType ? { artifactType } : {}),
});

describe('referrers tags and descriptors', () => {
  it.each([
    [A, `sha256-${'a'.repeat(64)}`],
    [`sha512:${'a'.repeat(128)}`, `sha512-${'a'.repeat(64)}`],
    // the spec's own example of truncation and replacement
    [
      'test+algorithm+using+algorithm+separators+and+lots+of+characters+to+excercise+overall+truncation:alsoSome=InTheEncodedSectionToShowHyphenReplacementAndLotsAndLotsOfCharactersToExcerciseEncodedTruncation',
      'test-algorithm-using-algorithm-s-alsoSome-InTheEncodedSectionToShowHyphenReplacementAndLotsAndLot',
    ],
  ])('referrersTag(%s) = %s', (digest, tag) => {
    expect(referrersTag(digest as Digest)).toBe(tag);
  });

  it('names cosign tags as cosign does, and only where the tag is valid', () => {
    expect(cosignTag(A, 'sig')).toBe(`sha256-${'a'.repeat(64)}.sig`);
    expect(cosignTag(`sha512:${'a'.repeat(128)}` as Digest, 'att')).toBeUndefined();
    expect(COSIGN_TAGS.sbom).toBe('application/vnd.dev.cosign.artifact.sbom.v1+json');
  });

  it.each([
    [`sha256-${'a'.repeat(64)}`, true],
    [`sha256-${'a'.repeat(64)}.sig`, true],
    [`sha256-${'a'.repeat(64)}.sbom`, true],
    [`sha512-${'b'.repeat(64)}`, true],
    ['1.27', false],
    [`sha256-${'a'.repeat(63)}`, false],
    [`sha256-${'a'.repeat(64)}.txt`, false],
    ['latest', false],
  ])('isReferrersTag(%s) = %s', (tag, expected) => {
    expect(isReferrersTag(tag)).toBe(expected);
  });

  it('gives a referrer the artifactType of the manifest, else its config media type (an index without one: none), and its annotations', () => {
    const withType = manifestFrom(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          artifactType: 'application/x.sbom',
          config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha('{}'), size: 2 },
          layers: [],
          annotations: { a: 'b', n: 1 },
        }),
      ),
      OCI_MANIFEST,
    );
    expect(referrerDescriptor(withType)).toEqual({
      mediaType: OCI_MANIFEST,
      digest: withType.digest,
      size: withType.bytes.length,
      artifactType: 'application/x.sbom',
      annotations: { a: 'b' },
    });
    const configOnly = manifestFrom(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { mediaType: COSIGN_TAGS.sig, digest: sha('{}'), size: 2 },
          layers: [],
        }),
      ),
      OCI_MANIFEST,
    );
    expect(referrerDescriptor(configOnly).artifactType).toBe(COSIGN_TAGS.sig);
    const anIndex = manifestFrom(Buffer.from(index([])), OCI_INDEX);
    expect(referrerDescriptor(anIndex)).toEqual({
      mediaType: OCI_INDEX,
      digest: anIndex.digest,
      size: anIndex.bytes.length,
    });
  });

  it('filters by artifactType only when types are given', () => {
    expect(typeMatches(undefined, undefined)).toBe(true);
    expect(typeMatches('a/b', [])).toBe(true);
    expect(typeMatches('a/b', ['a/b', 'c/d'])).toBe(true);
    expect(typeMatches('a/c', ['a/b'])).toBe(false);
    expect(typeMatches(undefined, ['a/b'])).toBe(false);
  });

  it('takes a referrers index only when it is an OCI index without subject that is not the subject itself', () => {
    const ok = manifestFrom(Buffer.from(index([desc(sha('x'))])), OCI_INDEX);
    expect(referrersIndexEntries(ok, A, 'tag').map((d) => d.digest)).toEqual([sha('x')]);
    const image = manifestFrom(
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: desc(sha('c')), layers: [] })),
      OCI_MANIFEST,
    );
    expect(() => referrersIndexEntries(image, A, 'tag X')).toThrow(
      /tag X is a application\/vnd.oci.image.manifest.v1\+json manifest, not the OCI index/,
    );
    expect(() => referrersIndexEntries(ok, ok.digest, 'tag X')).toThrow(/is the subject .* itself/);
    const withSubject = manifestFrom(Buffer.from(index([], { subject: desc(A) })), OCI_INDEX);
    expect(() => referrersIndexEntries(withSubject, A, 'tag X')).toThrow(/has a subject of its own/);
    const docker = manifestFrom(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
          manifests: [],
        }),
      ),
      'application/vnd.docker.distribution.manifest.list.v2+json',
    );
    expect(() => referrersIndexEntries(docker, A, 'tag X')).toThrow(/not the OCI index/);
  });

  it('merges: keeps the existing index (fields and entries) and appends', () => {
    const existing = manifestFrom(Buffer.from(index([desc(sha('old'))], { annotations: { kept: 'yes' } })), OCI_INDEX);
    const merged = JSON.parse(mergedReferrersIndex(existing, [desc(sha('new'), 'a/b')]).toString());
    expect(merged).toEqual({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      annotations: { kept: 'yes' },
      manifests: [desc(sha('old')), desc(sha('new'), 'a/b')],
    });
    expect(JSON.parse(mergedReferrersIndex(undefined, [desc(sha('new'))]).toString())).toEqual({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [desc(sha('new'))],
    });
  });
});

describe('registry client: listReferrers (scripted)', () => {
  let peer: ScriptedPeer | undefined;
  afterEach(async () => {
    await peer?.close();
    peer = undefined;
  });
  const client = () => new RegistryClient({ registry: peer!.host, insecure: true, retry, side: 'source' });
  const quota = () => ({ pages: 10, bytes: 1 << 20 });
  const path = `/v2/app/referrers/${A}`;

  it.each([
    [
      '404 (distribution 2.8: no such route)',
      { status: 404, headers: { 'content-type': 'text/plain' }, body: '404 page not found\n' },
    ],
    ['405', { status: 405, body: '' }],
    [
      "200 that is not an index (a proxy's page)",
      { status: 200, headers: { 'content-type': 'text/html' }, body: '<html></html>' },
    ],
  ])('has no API on %s', async (_name, res) => {
    peer = await scripted([{ req: { method: 'GET', path }, res }]);
    expect(await client().listReferrers('app', A, { quota: quota() })).toBeUndefined();
    peer.verify();
  });

  it('follows pages on its own origin, asks for the filter, and says whether every page applied it', async () => {
    peer = await scripted([
      {
        req: { method: 'GET', path: `${path}?artifactType=a%2Fb`, headers: { accept: OCI_INDEX } },
        res: {
          status: 200,
          headers: {
            'content-type': OCI_INDEX,
            'oci-filters-applied': 'artifactType',
            link: `<${path}?artifactType=a%2Fb&next=2>; rel="next"`,
          },
          body: index([desc(sha('1'), 'a/b')]),
        },
      },
      {
        req: { method: 'GET', path: `${path}?artifactType=a%2Fb&next=2` },
        res: {
          status: 200,
          headers: { 'content-type': OCI_INDEX, 'oci-filters-applied': 'artifactType' },
          body: index([desc(sha('2'), 'a/b')]),
        },
      },
    ]);
    const list = await client().listReferrers('app', A, { artifactType: 'a/b', quota: quota() });
    expect(list).toEqual({ descriptors: [desc(sha('1'), 'a/b'), desc(sha('2'), 'a/b')], filtered: true });
    peer.verify();
  });

  it('reports an unfiltered answer to a filtered request', async () => {
    peer = await scripted([
      {
        req: { method: 'GET', path: `${path}?artifactType=a%2Fb` },
        res: { status: 200, headers: { 'content-type': OCI_INDEX }, body: index([desc(sha('1'), 'c/d')]) },
      },
    ]);
    expect((await client().listReferrers('app', A, { artifactType: 'a/b', quota: quota() }))?.filtered).toBe(false);
    peer.verify();
  });

  it('refuses a next page on another origin', async () => {
    peer = await scripted([
      {
        req: { method: 'GET', path },
        res: {
          status: 200,
          headers: { 'content-type': OCI_INDEX, link: '<http://10.0.0.9/v2/app/referrers/x?p=2>; rel="next"' },
          body: index([]),
        },
      },
    ]);
    await expect(client().listReferrers('app', A, { quota: quota() })).rejects.toMatchObject({
      code: 'CROSS_ORIGIN_LINK',
      message: expect.stringContaining('referrers list'),
    });
    peer.verify();
  });

  it('stops at the quota: pages, and bytes', async () => {
    const page = {
      status: 200,
      headers: { 'content-type': OCI_INDEX, link: `<${path}?p=n>; rel="next"` },
      body: index([desc(sha('1'))]),
    };
    peer = await scripted([
      { req: { method: 'GET', path }, res: page },
      { req: { method: 'GET', path: `${path}?p=n` }, res: page },
    ]);
    await expect(client().listReferrers('app', A, { quota: { pages: 2, bytes: 1 << 20 } })).rejects.toMatchObject({
      code: 'TOO_MANY_REFERRERS',
    });
    peer.verify();
    await peer.close();
    peer = await scripted([{ req: { method: 'GET', path }, res: { ...page, headers: { 'content-type': OCI_INDEX } } }]);
    await expect(client().listReferrers('app', A, { quota: { pages: 2, bytes: 20 } })).rejects.toMatchObject({
      code: 'TOO_MANY_REFERRERS',
    });
    peer.verify();
  });

  it('returns OCI-Subject from a manifest PUT, and sends If-Match when asked', async () => {
    const m = manifestFrom(Buffer.from(index([])), OCI_INDEX);
    peer = await scripted([
      {
        req: { method: 'PUT', path: '/v2/app/manifests/t', headers: { 'if-match': '"e1"', 'content-type': OCI_INDEX } },
        res: { status: 201, headers: { 'docker-content-digest': m.digest, 'oci-subject': A } },
      },
      { req: { method: 'PUT', path: '/v2/app/manifests/t', headers: { 'if-match': undefined } }, res: { status: 201 } },
    ]);
    expect(await client().putManifest('app', 't', m, { ifMatch: '"e1"' })).toEqual({ subject: A });
    expect(await client().putManifest('app', 't', m)).toEqual({});
    peer.verify();
  });
});
