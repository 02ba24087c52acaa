/**
 * Trust boundaries through the service (memory storage, fake registries that record what they receive):
 * a named credential goes only where it is bound, writes stay inside TARGET_REPOSITORIES, a source cannot
 * page or redirect the worker elsewhere, the target's token stays on the target, and secrets end with
 * their job.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../lib/config.js';
import { RequestError } from '../../../lib/request/request.js';
import type { JobRecord } from '../../../lib/store/store.js';
import { SyncService } from '../../../lib/service/sync-service.js';
import { parseRules } from '../../../lib/sync/rules.js';
import { startFakeRegistry, type FakeRegistry } from '../../support/fake-registry.js';
import { testService, type TestService } from '../../support/service.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const KEY = Buffer.alloc(32, 7).toString('base64');

function seedImage(reg: FakeRegistry, repo: string, tag: string): string {
  const layer = Buffer.from(`layer of ${repo}:${tag}`);
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: reg.putBlob(repo, config),
        size: config.length,
      },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: reg.putBlob(repo, layer), size: layer.length },
      ],
    }),
  );
  return reg.putManifest(repo, tag, manifest, OCI_MANIFEST);
}

/** A server that records every request (and its headers) and answers 200 {}. */
async function recorder(): Promise<{
  host: string;
  url: string;
  seen: { url: string; headers: IncomingHttpHeaders }[];
  close(): Promise<void>;
}> {
  const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
  const server: Server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"stolen"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

const authorizations = (reg: FakeRegistry) => reg.requests.map((r) => r.headers.authorization).filter(Boolean);

describe('trust boundaries (memory storage, fake registries)', () => {
  const registries: FakeRegistry[] = [];
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all([...registries.splice(0).map((r) => r.close()), ...closers.splice(0).map((c) => c())]);
  });
  /** Starts one fake registry per options object, in order. */
  const start = async (
    ...opts: Parameters<typeof startFakeRegistry>[0][]
  ): Promise<[FakeRegistry, FakeRegistry, FakeRegistry]> => {
    const started = await Promise.all(opts.map((o) => startFakeRegistry(o)));
    registries.push(...started);
    return started as [FakeRegistry, FakeRegistry, FakeRegistry];
  };
  const drain = async (t: TestService) => {
    for (let i = 0; i < 200; i++) {
      const batch = t.queue.drain();
      if (!batch.length) return;
      for (const m of batch) await t.service.handleMessage(m, t.meta());
    }
  };
  const refusal = async (p: Promise<unknown>) => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RequestError);
    return (err as RequestError).toJSON().error;
  };

  it('a named credential never reaches a registry it is not bound to, and still works for its own', async () => {
    const [own, evil, dst] = await start(
      { auth: { kind: 'basic', username: 'hubuser', password: 'hub-secret' } },
      {},
      {},
    );
    const digest = seedImage(own, 'team/app', '1');
    seedImage(evil, 'steal/x', '1');
    const t = testService({
      TARGET_REGISTRY: dst.host,
      INSECURE_REGISTRIES: `${own.host},${evil.host},${dst.host}`,
      ALLOWED_SOURCES: `${own.host},${evil.host}`,
      REGISTRY_CREDENTIALS__hub__USERNAME: 'hubuser',
      REGISTRY_CREDENTIALS__hub__PASSWORD: 'hub-secret',
      REGISTRY_CREDENTIALS__hub__REGISTRIES: own.host,
    });
    // over HTTP, and dropped on the queue: refused before anything is created
    expect(
      await refusal(t.service.submit({ source: `${evil.host}/steal/x:1`, credential: 'hub' }, 'http')),
    ).toMatchObject({
      code: 'CREDENTIAL_NOT_ALLOWED',
      target: 'credential',
      message: expect.stringContaining('REGISTRY_CREDENTIALS__hub__REGISTRIES'),
    });
    await t.service.handleMessage({ source: `${evil.host}/steal/x:1`, credential: 'hub' }, t.meta());
    expect(t.queue.sent).toEqual([]);
    expect(JSON.stringify(t.queue.poisoned)).toContain('CREDENTIAL_NOT_ALLOWED');
    expect(evil.requests).toHaveLength(0);

    const job = await t.service.submit(
      { source: `${own.host}/team/app:1`, images: ['app:1'], credential: 'hub' },
      'http',
    );
    await drain(t);
    expect(await t.service.status(job.id)).toMatchObject({ status: 'succeeded', digest });
    expect(authorizations(own).length).toBeGreaterThan(0);
    expect(authorizations(evil)).toEqual([]);
  });

  it('the engine checks the binding again: a job whose credential does not fit its source sends it nowhere', async () => {
    const [evil, dst] = await start({ auth: { kind: 'basic', username: 'x', password: 'y' } }, {});
    seedImage(evil, 'steal/x', '1');
    const t = testService({
      TARGET_REGISTRY: dst.host,
      INSECURE_REGISTRIES: `${evil.host},${dst.host}`,
      ALLOWED_SOURCES: evil.host,
      REGISTRY_CREDENTIALS__hub__USERNAME: 'hubuser',
      REGISTRY_CREDENTIALS__hub__PASSWORD: 'hub-secret',
      REGISTRY_CREDENTIALS__hub__REGISTRIES: 'docker.io',
    });
    // a record as an older deployment (or a changed binding) left it
    const now = new Date().toISOString();
    const job: JobRecord = {
      id: randomUUID(),
      status: 'queued',
      createdAt: now,
      updatedAt: now,
      expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
      request: {
        source: `${evil.host}/steal/x:1`,
        target: dst.host,
        force: false,
        credential: 'hub',
        inlineCredentials: false,
      },
      targets: [`${dst.host}/steal/x:1`],
      repositories: ['steal/x'],
      blobsTotal: 0,
      bytesTotal: 0,
      manifests: 0,
      blobBytes: {},
      doneBlobs: [],
    };
    await t.store.create(job);
    await t.service.handleMessage(t.sign({ v: 1, job: job.id, step: 'plan' }), t.meta());
    expect(await t.service.status(job.id)).toMatchObject({
      status: 'failed',
      error: { code: 'CREDENTIAL_NOT_ALLOWED' },
    });
    expect(authorizations(evil)).toEqual([]);
  });

  it('a token realm on another host gets no credential (Bearer challenge pointing elsewhere)', async () => {
    const collector = await recorder();
    closers.push(collector.close);
    const [evil, dst] = await start({}, {});
    seedImage(evil, 'steal/x', '1');
    evil.faults.push({
      method: 'GET',
      path: /\/manifests\//,
      action: {
        kind: 'status',
        status: 401,
        headers: {
          'WWW-Authenticate': `Bearer realm="http://collector.test:${collector.host.split(':')[1]}/token",service="x"`,
        },
      },
    });
    const t = testService(
      {
        TARGET_REGISTRY: dst.host,
        INSECURE_REGISTRIES: `${evil.host},${dst.host}`,
        ALLOWED_SOURCES: `${evil.host},collector.test`,
        REGISTRY_CREDENTIALS__hub__USERNAME: 'hubuser',
        REGISTRY_CREDENTIALS__hub__PASSWORD: 'hub-secret',
        REGISTRY_CREDENTIALS__hub__REGISTRIES: evil.host,
      },
      { lookup: async (host) => (host === 'collector.test' ? ['127.0.0.1'] : ['203.0.113.10']) },
    );
    const job = await t.service.submit({ source: `${evil.host}/steal/x:1`, credential: 'hub' }, 'http');
    await drain(t);
    expect(await t.service.status(job.id)).toMatchObject({
      status: 'failed',
      error: { code: 'CREDENTIAL_NOT_ALLOWED', message: expect.stringContaining('collector.test') },
    });
    expect(collector.seen).toHaveLength(0);
  });

  it('TARGET_REPOSITORIES confines writes: a request outside it is refused naming the repository', async () => {
    const [src, dst] = await start({}, {});
    const digest = seedImage(src, 'team/app', '1');
    const t = testService({
      TARGET_REGISTRY: dst.host,
      INSECURE_REGISTRIES: `${src.host},${dst.host}`,
      ALLOWED_SOURCES: src.host,
      TARGET_REPOSITORIES: 'allowed/*,mirror/exact',
    });
    expect(
      await refusal(
        t.service.submit({ source: `${src.host}/team/app:1`, images: ['allowed/app:1', 'other/x:1'] }, 'http'),
      ),
    ).toMatchObject({
      code: 'REPOSITORY_NOT_ALLOWED',
      target: 'images[1]',
      message: expect.stringContaining('repository other/x is outside'),
    });
    expect(await refusal(t.service.submit({ source: `${src.host}/team/app:1` }, 'http'))).toMatchObject({
      code: 'REPOSITORY_NOT_ALLOWED',
      target: 'source',
    });
    expect(
      await refusal(t.service.submit({ source: `${src.host}/team/app:1`, repository: 'mirror/exact2' }, 'http')),
    ).toMatchObject({ target: 'repository' });
    expect(t.queue.sent).toEqual([]);
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['allowed/deep/app:1'] }, 'http');
    await drain(t);
    expect(await t.service.status(job.id)).toMatchObject({ status: 'succeeded', digest });
    // sync rules: refused when the rules are read, naming the rule
    expect(() =>
      parseRules(
        JSON.stringify([{ source: `${src.host}/team/app`, target: 'other/app' }]),
        'SYNC_RULES',
        loadConfig(t.env),
      ),
    ).toThrow(/SYNC_RULES:\d+: \[0\]\.target: target repository other\/app is outside TARGET_REPOSITORIES/);
  });

  it('the sync pass never follows a tag list Link to another origin', async () => {
    const collector = await recorder();
    closers.push(collector.close);
    const [src, dst] = await start({}, {});
    seedImage(src, 'team/app', 'v1');
    src.faults.push({
      method: 'GET',
      path: /\/tags\/list/,
      action: {
        kind: 'status',
        status: 200,
        headers: { Link: `<${collector.url}/v2/team/app/tags/list?last=v1>; rel="next"` },
        body: '{"tags":["v1"]}',
      },
    });
    const t = testService({
      TARGET_REGISTRY: dst.host,
      INSECURE_REGISTRIES: `${src.host},${dst.host}`,
      ALLOWED_SOURCES: src.host,
    });
    const sync = new SyncService(t.service, t.docs, loadConfig(t.env), dst.host);
    const report = await sync.runPass(parseRules(JSON.stringify([{ source: `${src.host}/team/app` }]), 'SYNC_RULES'));
    expect(report.errors).toMatchObject([{ code: 'CROSS_ORIGIN_LINK' }]);
    expect(report.enqueued).toEqual([]);
    expect(collector.seen).toHaveLength(0);
  });

  it("an upload Location on another origin is refused: the target's token stays on the target", async () => {
    const collector = await recorder();
    closers.push(collector.close);
    const [src, dst] = await start({}, { auth: { kind: 'basic', username: 'pusher', password: 'push-secret' } });
    seedImage(src, 'team/app', '1');
    dst.faults.push({
      method: 'POST',
      path: /\/blobs\/uploads\/$/,
      action: { kind: 'status', status: 202, headers: { Location: `${collector.url}/upload/1` } },
    });
    const t = testService({
      TARGET_REGISTRY: dst.host,
      INSECURE_REGISTRIES: `${src.host},${dst.host}`,
      ALLOWED_SOURCES: src.host,
      TARGET_USERNAME: 'pusher',
      TARGET_PASSWORD: 'push-secret',
    });
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    await drain(t);
    expect(await t.service.status(job.id)).toMatchObject({
      status: 'failed',
      error: { code: 'UNEXPECTED_UPLOAD_LOCATION' },
    });
    expect(collector.seen).toHaveLength(0);
  });

  it('an error body that is not a registry error is not copied into the job', async () => {
    const [src, dst] = await start({}, {});
    src.faults.push({
      method: 'GET',
      path: /\/manifests\//,
      action: { kind: 'status', status: 403, body: '<html>Internal admin: db_password=s3cr3t</html>' },
    });
    const t = testService({
      TARGET_REGISTRY: dst.host,
      INSECURE_REGISTRIES: `${src.host},${dst.host}`,
      ALLOWED_SOURCES: src.host,
    });
    const job = await t.service.submit({ source: `${src.host}/team/app:1` }, 'http');
    await drain(t);
    const status = await t.service.status(job.id);
    expect(status).toMatchObject({ status: 'failed', error: { code: 'HTTP_403' } });
    expect(JSON.stringify(status)).not.toContain('s3cr3t');
  });

  it('sealed credentials are deleted when the job ends; no username is stored or shown', async () => {
    const [src, dst] = await start({ auth: { kind: 'basic', username: 'inline-user', password: 'inline-secret' } }, {});
    seedImage(src, 'team/app', '1');
    const t = testService({
      TARGET_REGISTRY: dst.host,
      INSECURE_REGISTRIES: `${src.host},${dst.host}`,
      ALLOWED_SOURCES: src.host,
      CREDENTIAL_KEY: KEY,
    });
    const ok = await t.service.submit(
      { source: `${src.host}/team/app:1`, images: ['app:1'], username: 'inline-user', password: 'inline-secret' },
      'http',
    );
    const bad = await t.service.submit(
      { source: `${src.host}/team/missing:1`, images: ['app:2'], username: 'inline-user', password: 'inline-secret' },
      'http',
    );
    expect(t.docs.dump().has(`${ok.id}/secret.json`)).toBe(true);
    await drain(t);
    expect((await t.service.status(ok.id))?.status).toBe('succeeded');
    expect((await t.service.status(bad.id))?.status).toBe('failed');
    const stored = [...t.docs.dump()];
    expect(stored.filter(([path]) => path.endsWith('secret.json'))).toEqual([]);
    expect(JSON.stringify(stored)).not.toContain('inline-user');
    expect(JSON.stringify(stored)).not.toContain('inline-secret');
  });
});
