/**
 * includeReferrers through the service (issue 15): `POST /api/imports` and the queue steps on memory
 * storage against fake registries — the referrers land on the target, the status lists them and counts
 * them in `progress.manifests`; bad combinations are refused with a 400 naming the field.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { afterEach, describe, expect, it } from 'vitest';
import { getImport } from '../../../functions/imports.js';
import { createImportVia } from '../../support/create-import.js';
import { loadConfig } from '../../../lib/config.js';
import { setImportService } from '../../../lib/service/runtime.js';
import { SyncService } from '../../../lib/service/sync-service.js';
import { parseRules } from '../../../lib/sync/rules.js';
import { startFakeRegistry, type FakeRegistry } from '../../support/fake-registry.js';
import { attach, fallbackEntries, fallbackTag, listed, SBOM, seedIndex, SIG } from '../../support/referrer-fixtures.js';
import { testService, type TestService } from '../../support/service.js';

const ctx = () => new InvocationContext({ functionName: 'test', invocationId: 'test', logHandler: () => undefined });
const post = (body: object) =>
  new HttpRequest({
    method: 'POST',
    url: 'http://127.0.0.1:7071/api/imports',
    headers: { 'content-type': 'application/json' },
    body: { string: JSON.stringify(body) },
  });

describe('includeReferrers through the service (fake registries)', () => {
  let src: FakeRegistry;
  let dst: FakeRegistry;
  let t: TestService;
  afterEach(async () => {
    setImportService(undefined);
    await Promise.all([src?.close(), dst?.close()]);
  });
  const setup = async () => {
    [src, dst] = await Promise.all([startFakeRegistry(), startFakeRegistry()]);
    t = testService({
      TARGET_REGISTRY: dst.host,
      INSECURE_REGISTRIES: `${src.host},${dst.host}`,
      ALLOWED_SOURCES: src.host,
      STEP_BUDGET_SECONDS: '5',
    });
    setImportService(t.service);
  };
  const drain = async () => {
    for (let rounds = 0; rounds < 100 && t.queue.sent.length; rounds++) {
      for (const m of t.queue.drain()) await t.service.handleMessage(m, t.meta());
    }
  };

  it('POST with includeReferrers and referrerTypes: 202, the chosen referrers copied, listed in the status and counted', async () => {
    await setup();
    const { index } = seedIndex(src);
    const sig = attach(src, 'team/app', index, { configType: SIG, payload: 'sig' });
    const sbom = attach(src, 'team/app', index, { artifactType: SBOM, payload: 'sbom' });
    fallbackTag(src, 'team/app', index.digest, [listed(sig, SIG), listed(sbom, SBOM)]);

    const res = await createImportVia(
      t.queue,
      post({ source: `${src.host}/team/app:1`, images: ['app:1'], includeReferrers: true, referrerTypes: [SIG] }),
      ctx(),
    );
    expect(res.status).toBe(202);
    const id = (res.jsonBody as { id: string }).id;
    await drain();
    const status = await getImport(
      new HttpRequest({ method: 'GET', url: `http://127.0.0.1:7071/api/imports/${id}`, params: { id } }),
      ctx(),
    );
    expect(status.jsonBody).toMatchObject({
      status: 'succeeded',
      digest: index.digest,
      // the index, its 2 children and the signature
      progress: { manifests: 4 },
      referrers: [{ digest: sig.digest, artifactType: SIG, subject: index.digest }],
    });
    expect(dst.getManifest('app', sig.digest)?.digest).toBe(sig.digest);
    expect(dst.getManifest('app', sbom.digest)).toBeUndefined();
    expect(fallbackEntries(dst, 'app', index.digest).map((e) => e.digest)).toEqual([sig.digest]);
  });

  it('without includeReferrers the status has no referrers and the target nothing extra', async () => {
    await setup();
    const { index } = seedIndex(src);
    const sig = attach(src, 'team/app', index, { configType: SIG, payload: 'sig' });
    fallbackTag(src, 'team/app', index.digest, [listed(sig, SIG)]);
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    await drain();
    const status = await t.service.status(job.id);
    expect(status).toMatchObject({ status: 'succeeded', progress: { manifests: 3 } });
    expect(status).not.toHaveProperty('referrers');
    expect(dst.tags('app')).toEqual(['1']);
    expect(dst.getManifest('app', sig.digest)).toBeUndefined();
  });

  it('a request dropped on the queue may ask for referrers too', async () => {
    await setup();
    const { index } = seedIndex(src);
    const sig = attach(src, 'team/app', index, { configType: SIG, payload: 'sig' });
    fallbackTag(src, 'team/app', index.digest, [listed(sig, SIG)]);
    await t.service.handleMessage(
      { source: `${src.host}/team/app:1`, images: ['queued/app:1'], includeReferrers: true },
      t.meta(),
    );
    await drain();
    expect(fallbackEntries(dst, 'queued/app', index.digest).map((e) => e.digest)).toEqual([sig.digest]);
  });

  it("the sync timer enqueues imports with the rule's referrers, and again when only the referrers changed", async () => {
    await setup();
    const { index } = seedIndex(src, 'team/app', 'v1');
    const sig = attach(src, 'team/app', index, { configType: SIG, payload: 'sig' });
    fallbackTag(src, 'team/app', index.digest, [listed(sig, SIG)]);
    const sync = new SyncService(t.service, t.docs, loadConfig(t.env), dst.host);
    const rules = parseRules(
      JSON.stringify([{ source: `${src.host}/team/app`, target: 'timer/app', referrers: true, referrerTypes: [SIG] }]),
      'SYNC_RULES',
    );
    const first = await sync.runPass(rules);
    expect(first.enqueued.map((e) => e.target)).toEqual([`${dst.host}/timer/app:v1`]);
    expect((await t.store.get(first.enqueued[0]!.job))?.request).toMatchObject({
      includeReferrers: true,
      referrerTypes: [SIG],
    });
    await drain();
    expect(fallbackEntries(dst, 'timer/app', index.digest).map((e) => e.digest)).toEqual([sig.digest]);
    expect((await sync.runPass(rules)).skipped).toHaveLength(1);

    const later = attach(src, 'team/app', index, { configType: SIG, payload: 'later' });
    fallbackTag(src, 'team/app', index.digest, [listed(sig, SIG), listed(later, SIG)]);
    expect((await sync.runPass(rules)).enqueued).toHaveLength(1);
    await drain();
    expect(fallbackEntries(dst, 'timer/app', index.digest).map((e) => e.digest)).toEqual([sig.digest, later.digest]);
  });

  it.each([
    [{ referrerTypes: [SIG] }, 'CONFLICTING_FIELDS', 'referrerTypes'],
    [{ includeReferrers: true, referrerTypes: ['not a type'] }, 'INVALID_FIELD', 'referrerTypes.0'],
    [{ includeReferrers: true, referrerTypes: [] }, 'INVALID_FIELD', 'referrerTypes'],
    [{ includeReferrers: 'yes' }, 'INVALID_TYPE', 'includeReferrers'],
    [{ includeRefferers: true }, 'UNKNOWN_FIELD', 'includeRefferers'],
  ])('refuses %j with %s naming %s', async (extra, code, target) => {
    t = testService({ TARGET_REGISTRY: 'r.example', ALLOWED_SOURCES: '*' });
    setImportService(t.service);
    const res = await createImportVia(t.queue, post({ source: 'docker.io/library/nginx:1.27', ...extra }));
    expect(res.status).toBe(400);
    expect(res.jsonBody).toMatchObject({ error: { code, target } });
    expect(t.queue.sent).toEqual([]);
  });
});
