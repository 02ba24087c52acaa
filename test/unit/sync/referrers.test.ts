/**
 * Sync rules with `"referrers": true` (issue 15) against fake registries: referrer tags travel with their
 * images (never selected as images), the imports carry includeReferrers, and an unchanged tag is imported
 * again when a referrer was added upstream — found cheaply: by the tag list and one HEAD where the source
 * has no referrers API, one GET of the API where it has one. Every source request is counted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ImportEngine, runImport } from '../../../lib/engine/engine.js';
import { RegistryClient } from '../../../lib/oci/registry.js';
import { planSync } from '../../../lib/sync/pass.js';
import { parseRules } from '../../../lib/sync/rules.js';
import {
  startFakeRegistry,
  type FakeRegistry,
  type FakeRegistryOptions,
  type RecordedRequest,
} from '../../support/fake-registry.js';
import {
  attach,
  fallbackEntries,
  fallbackTag,
  hex,
  listed,
  OCI_MANIFEST,
  seedIndex,
  SIG,
} from '../../support/referrer-fixtures.js';

const retry = { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5 };

describe('sync with referrers (fake registries)', () => {
  let src: FakeRegistry;
  let dst: FakeRegistry;
  afterEach(async () => {
    await Promise.all([src?.close(), dst?.close()]);
  });
  const start = async (s: FakeRegistryOptions = {}, d: FakeRegistryOptions = {}) => {
    [src, dst] = await Promise.all([startFakeRegistry(s), startFakeRegistry(d)]);
  };
  const clients = () => ({
    source: new RegistryClient({ registry: src.host, insecure: true, retry }),
    target: new RegistryClient({ registry: dst.host, insecure: true, retry }),
  });
  const rules = (extra: object = { referrers: true }) =>
    parseRules(JSON.stringify([{ source: `${src.host}/team/app`, target: 'mirror/app', ...extra }]), 'rules.json');
  /** One pass: plan, then run every import it selects. */
  const pass = async (extra?: object) => {
    const c = clients();
    const plan = await planSync(rules(extra), {
      target: dst.host,
      targetClient: c.target,
      sourceClient: () => c.source,
      maxTags: 100,
      concurrency: 4,
    });
    const engine = new ImportEngine({
      ...c,
      chunkSize: Infinity,
      fetchConcurrency: 2,
      maxManifests: 50,
      maxBlobs: 1000,
      maxImportBytes: 2 ** 40,
    });
    for (const item of plan.items)
      if (item.request) await runImport(engine, item.request, { blobConcurrency: 2, stepMs: 60_000 });
    return plan;
  };
  const since = (n: number): RecordedRequest[] => src.requests.slice(n);
  const brief = (r: RecordedRequest[]) =>
    r.map((q) => `${q.method} ${q.url.replace(/sha256[:-]([0-9a-f]{8})[0-9a-f]{56}/g, 'sha256-$1')}`);

  it('without the API: referrer tags are no images; a signature added upstream is found by the tag list and one HEAD', async () => {
    await start();
    const { index } = seedIndex(src, 'team/app', 'v1');
    const sig = attach(src, 'team/app', index, { configType: SIG, payload: 'first signature' });
    fallbackTag(src, 'team/app', index.digest, [listed(sig, SIG)]);

    const first = await pass();
    expect(first.items.map((i) => [i.tag, i.action])).toEqual([['v1', 'import']]);
    expect(first.items[0]!.request).toMatchObject({ includeReferrers: true });
    expect(dst.tags('mirror/app')).toEqual([`sha256-${hex(index.digest)}`, 'v1']);
    expect(fallbackEntries(dst, 'mirror/app', index.digest).map((e) => e.digest)).toEqual([sig.digest]);

    // unchanged: the tag list, the tag's HEAD, the fallback tag's HEAD (equal on both sides); no GET of a manifest
    let n = src.requests.length;
    const quiet = await pass();
    expect(quiet.items.map((i) => [i.tag, i.action])).toEqual([['v1', 'unchanged']]);
    expect(brief(since(n))).toEqual([
      'GET /v2/team/app/tags/list?n=1000',
      'HEAD /v2/team/app/manifests/v1',
      `GET /v2/team/app/referrers/sha256-${hex(index.digest).slice(0, 8)}`,
      `HEAD /v2/team/app/manifests/sha256-${hex(index.digest).slice(0, 8)}`,
    ]);

    // upstream signs again: the fallback tag now lists two
    const second = attach(src, 'team/app', index, { configType: SIG, payload: 'second signature' });
    fallbackTag(src, 'team/app', index.digest, [listed(sig, SIG), listed(second, SIG)]);
    n = src.requests.length;
    const found = await pass();
    expect(found.items.map((i) => [i.tag, i.action, i.reason])).toEqual([['v1', 'import', 'referrers']]);
    expect(brief(since(n)).slice(0, 5)).toEqual([
      'GET /v2/team/app/tags/list?n=1000',
      'HEAD /v2/team/app/manifests/v1',
      `GET /v2/team/app/referrers/sha256-${hex(index.digest).slice(0, 8)}`,
      `HEAD /v2/team/app/manifests/sha256-${hex(index.digest).slice(0, 8)}`,
      `GET /v2/team/app/manifests/sha256-${hex(index.digest).slice(0, 8)}`,
    ]);
    expect(fallbackEntries(dst, 'mirror/app', index.digest).map((e) => e.digest)).toEqual([sig.digest, second.digest]);
    expect((await pass()).items.map((i) => i.action)).toEqual(['unchanged']);
  });

  it('an image without referrers costs no request beyond the tag list and the HEAD', async () => {
    await start();
    seedIndex(src, 'team/app', 'v1');
    await pass();
    const n = src.requests.length;
    expect((await pass()).items.map((i) => i.action)).toEqual(['unchanged']);
    // the referrers API once per rule (it is absent: 404), then nothing for the tag
    expect(brief(since(n)).filter((r) => !r.includes('tags/list') && !r.endsWith('manifests/v1'))).toHaveLength(1);
  });

  it('with the API: one GET per tag; a new referrer is imported on the next pass', async () => {
    await start({ referrers: {} }, { referrers: {} });
    const { index } = seedIndex(src, 'team/app', 'v1');
    await pass();
    const n = src.requests.length;
    expect((await pass()).items.map((i) => i.action)).toEqual(['unchanged']);
    expect(brief(since(n))).toEqual([
      'GET /v2/team/app/tags/list?n=1000',
      'HEAD /v2/team/app/manifests/v1',
      `GET /v2/team/app/referrers/sha256-${hex(index.digest).slice(0, 8)}`,
    ]);
    const sig = attach(src, 'team/app', index, { configType: SIG, payload: 'late signature' });
    expect((await pass()).items.map((i) => [i.action, i.reason])).toEqual([['import', 'referrers']]);
    expect(dst.referrersOf('mirror/app', index.digest).map((d) => d.digest)).toEqual([sig.digest]);
  });

  it('a cosign tag added upstream is found by the tag list and compared by HEAD', async () => {
    await start();
    const { index } = seedIndex(src, 'team/app', 'v1');
    await pass();
    const sig = attach(src, 'team/app', index, { configType: SIG, payload: 'legacy' });
    src.putManifest('team/app', `sha256-${hex(index.digest)}.sig`, sig.bytes, OCI_MANIFEST);
    const found = await pass();
    expect(found.items.map((i) => [i.tag, i.action, i.reason])).toEqual([['v1', 'import', 'referrers']]);
    expect(dst.getManifest('mirror/app', `sha256-${hex(index.digest)}.sig`)?.digest).toBe(sig.digest);
    expect((await pass()).items.map((i) => i.action)).toEqual(['unchanged']);
  });

  it('a rule without referrers keeps selecting every tag, as before', async () => {
    await start();
    const { index } = seedIndex(src, 'team/app', 'v1');
    const sig = attach(src, 'team/app', index, { configType: SIG, payload: 'sig' });
    fallbackTag(src, 'team/app', index.digest, [listed(sig, SIG)]);
    const plan = await pass({});
    expect(plan.items.map((i) => i.tag).sort()).toEqual([`sha256-${hex(index.digest)}`, 'v1']);
    expect(plan.items.every((i) => !i.request?.includeReferrers)).toBe(true);
  });

  it('refuses referrerTypes without referrers, naming the line', () => {
    expect(() =>
      parseRules(
        '[\n  {\n    "source": "ghcr.io/org/app",\n    "referrerTypes": ["application/spdx+json"]\n  }\n]',
        'rules.json',
      ),
    ).toThrow(/rules\.json:4: \[0\]\.referrerTypes: referrerTypes selects which referrers/);
    expect(() =>
      parseRules('[{"source": "ghcr.io/org/app", "referrers": true, "referrerTypes": ["spdx"]}]', 'rules.json'),
    ).toThrow(/must be a media type/);
  });
});
