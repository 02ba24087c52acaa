/**
 * Operating a deployment, end to end against the local host (a separate process on Azurite, real registries,
 * results checked with skopeo), as issue 16 asks:
 * - a repeated POST with the same Repeatability-Request-ID returns the same import; the 202 has
 *   Operation-Location; the same id with another body is 409;
 * - `oci-import import --endpoint` waits and exits 0 with the image intact; `--no-wait` returns the id at once;
 *   `status`, `list`, `cancel` against the same endpoint;
 * - headless Chromium renders /api/ui (phone size) listing the running, succeeded and failed imports and the
 *   last sync pass, under its Content-Security-Policy with no violation;
 * - a 300 MB import canceled after 2 s ends `canceled`: its upload session is gone from the target, nothing is
 *   tagged, and `GET /api/imports?limit=5` lists it;
 * - /api/openapi.json is OpenAPI 3.1, and the answers the host gives before any handler (401 without a key,
 *   403 for a foreign Origin) happen on every documented route.
 * OCI_IMPORT_SCREENSHOT=<file.png> keeps the status page's screenshot (docs/status-page.png is one).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFarProxy, type FarProxy } from '../../scripts/bench/far-proxy.js';
import { startHost, type HostProcess } from '../host/host-process.js';
import { startAzurite, type RunningAzurite } from '../support/azurite.js';
import { Browser, requireChromium } from '../support/chromium.js';
import { runCli } from '../support/cli.js';
import { buildImage, type BuiltImage } from '../support/fixtures.js';
import { requireRegistryTools, startRegistry, type RunningRegistry } from '../support/registry.js';
import { copyAllToDir, manifestDigest, pushOciLayout } from '../support/skopeo.js';

const hasTools = requireRegistryTools() && requireChromium();
const MB = 1_000_000;
const KEY = randomBytes(16).toString('hex');
const BODY_LIMIT = 1_048_576;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface View {
  id: string;
  status: string;
  digest?: string;
  error?: { code: string; message: string };
  progress: { bytesCopied: number; bytesTotal: number; blobsDone: number; blobsTotal: number };
}

describe.skipIf(!hasTools)('operating the service: repeatable POST, CLI client, status page, cancel, OpenAPI', () => {
  let azurite: RunningAzurite;
  let src: RunningRegistry;
  let dst: RunningRegistry;
  let far: FarProxy;
  /** The source at 4 MiB/s per connection: the 300 MB import cannot end within 2 s however idle the machine. */
  let farBig: FarProxy;
  let host: HostProcess;
  let work: string;
  let small: BuiltImage;
  let slow: BuiltImage;
  let big: BuiltImage;
  const ids: Record<string, string> = {};

  const api = () => `${host.url}/api`;
  const withKey = { 'x-functions-key': KEY };
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${api()}/imports`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...withKey, ...headers },
      body: JSON.stringify(body),
    });
  const view = async (id: string): Promise<View> =>
    (await fetch(`${api()}/imports/${id}`, { headers: withKey })).json() as Promise<View>;
  const waitFor = async (id: string, done: (v: View) => boolean, timeoutMs = 120_000): Promise<View> => {
    for (const deadline = Date.now() + timeoutMs; ;) {
      const v = await view(id);
      if (done(v)) return v;
      if (Date.now() > deadline)
        throw new Error(`import ${id} still ${JSON.stringify(v)}\n${host.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const ended = (v: View) => ['succeeded', 'failed', 'canceled'].includes(v.status);
  const cliEnv = () => ({ OCI_IMPORT_KEY: KEY });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'oci-import-operate-'));
    [azurite, src, dst] = await Promise.all([startAzurite(), startRegistry({ auth: 'htpasswd' }), startRegistry()]);
    const creds = { username: src.username!, password: src.password! };
    [small, slow, big] = await Promise.all([
      buildImage({ dir: join(work, 'small'), seed: 'operate-small', layersPerPlatform: 2, layerSize: 200_000 }),
      buildImage({
        dir: join(work, 'slow'),
        seed: 'operate-slow',
        layersPerPlatform: 1,
        layerSize: 30 * MB,
        streamLayers: true,
      }),
      buildImage({
        dir: join(work, 'big'),
        seed: 'operate-big',
        layersPerPlatform: 1,
        layerSize: 300 * MB,
        streamLayers: true,
      }),
    ]);
    await pushOciLayout(small.layoutDir, `${src.host}/team/small:1`, creds);
    await pushOciLayout(slow.layoutDir, `${src.host}/team/slow:1`, creds);
    await pushOciLayout(big.layoutDir, `${src.host}/team/big:1`, creds);
    // the source seen from far away: a long-running import to watch on the status page
    far = await startFarProxy({ target: src.host, latencyMs: 20, bytesPerSecond: 128 * 1024 });
    farBig = await startFarProxy({ target: src.host, latencyMs: 0, bytesPerSecond: 4 * 1024 * 1024 });
    host = await startHost({
      args: ['--main', 'functions/*.ts', '--port', '0', '--no-azurite'],
      readyTimeoutMs: 60_000,
      env: {
        AzureWebJobsStorage: azurite.connectionString,
        TARGET_REGISTRY: dst.host,
        INSECURE_REGISTRIES: `${src.host},${far.host},${farBig.host},${dst.host}`,
        ALLOWED_SOURCES: `${src.host},${far.host},${farBig.host}`,
        CHUNK_SIZE: '8MiB',
        STEP_BUDGET_SECONDS: '2',
        IMPORT_QUEUE: 'imports',
        LOCAL_HOST_QUEUE_LEASE_SECONDS: '3',
        REGISTRY_CREDENTIALS__src__USERNAME: src.username!,
        REGISTRY_CREDENTIALS__src__PASSWORD: src.password!,
        REGISTRY_CREDENTIALS__src__REGISTRIES: `${src.host},${far.host},${farBig.host}`,
        SYNC_SCHEDULE: '*/5 * * * * *',
        SYNC_RULES: JSON.stringify([{ source: `${src.host}/team/small`, target: 'mirror/small', credential: 'src' }]),
        LOCAL_HOST_FUNCTION_KEY: KEY,
        FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: String(BODY_LIMIT),
      },
    });
  }, 300_000);

  afterAll(async () => {
    await host?.stop('SIGTERM');
    await Promise.all([far?.close(), farBig?.close(), azurite?.stop(), src?.stop(), dst?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('a repeated POST with the same Repeatability-Request-ID returns the same import; the 202 has Operation-Location', async () => {
    const body = { source: `${src.host}/team/small:1`, images: ['op/small:1'], credential: 'src' };
    const first = await post(body, {
      'repeatability-request-id': 'op-1',
      'repeatability-first-sent': new Date().toUTCString(),
    });
    expect(first.status).toBe(202);
    const created = (await first.json()) as { id: string; statusUrl: string };
    expect(created.id).toMatch(UUID);
    expect(first.headers.get('operation-location')).toBe(created.statusUrl);
    expect(first.headers.get('location')).toBe(created.statusUrl);
    expect(first.headers.get('repeatability-result')).toBe('accepted');

    const again = await post(body, { 'repeatability-request-id': 'op-1' });
    expect(again.status).toBe(202);
    expect(((await again.json()) as { id: string }).id).toBe(created.id);
    const other = await post({ ...body, force: true }, { 'repeatability-request-id': 'op-1' });
    expect(other.status).toBe(409);
    expect(other.headers.get('x-ms-error-code')).toBe('REPEATABILITY_CONFLICT');

    const done = await waitFor(created.id, ended);
    expect(done).toMatchObject({ status: 'succeeded', digest: small.digest });
    expect(await manifestDigest(`${dst.host}/op/small:1`)).toBe(small.digest);
    ids.succeeded = created.id;

    const failed = await post({
      source: `${src.host}/team/small:no-such-tag`,
      images: ['op/missing:1'],
      credential: 'src',
    });
    ids.failed = ((await failed.json()) as { id: string }).id;
    expect(await waitFor(ids.failed, ended)).toMatchObject({ status: 'failed', error: { code: 'SOURCE_NOT_FOUND' } });
  });

  it('oci-import import --endpoint waits and exits 0 with the image intact; --no-wait returns the id at once', async () => {
    const run = await runCli(
      [
        'import',
        '--endpoint',
        api(),
        '--source',
        `${src.host}/team/small:1`,
        '--image',
        'cli/small:1',
        '--credential',
        'src',
      ],
      cliEnv(),
    );
    expect(run.stderr).toMatch(/import [0-9a-f-]{36} queued/);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`imported ${src.host}/team/small:1 → ${dst.host}/cli/small:1\ndigest ${small.digest}`);
    expect(await manifestDigest(`${dst.host}/cli/small:1`)).toBe(small.digest);
    await copyAllToDir(`${dst.host}/cli/small:1`, join(work, 'out-cli'));

    const started = Date.now();
    const noWait = await runCli(
      [
        'import',
        '--endpoint',
        api(),
        '--no-wait',
        '--source',
        `${far.host}/team/slow:1`,
        '--image',
        'cli/slow:1',
        '--credential',
        'src',
      ],
      cliEnv(),
    );
    const [id, statusUrl] = noWait.stdout.trim().split('\n');
    expect(noWait.code, noWait.stderr).toBe(0);
    expect(id).toMatch(UUID);
    expect(statusUrl).toBe(`${api()}/imports/${id}`);
    expect(ended(await view(id!))).toBe(false); // 30 MB at 1 MiB/s: it goes on after the command returned
    ids.running = id!;
    expect(Date.now() - started).toBeLessThan(20_000);

    const status = await runCli(['status', id!, '--endpoint', api(), '--json'], cliEnv());
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ id, source: `${far.host}/team/slow:1` });
    const list = await runCli(['list', '--limit', '3', '--endpoint', api(), '--json'], cliEnv());
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { value: View[] }).value.map((v) => v.id)[0]).toBe(id);
    const refused = await runCli(['import', '--endpoint', api(), '--source', 'x/y:1', '--target', dst.host], cliEnv());
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--target is for a local import');
  });

  it('headless Chromium renders /api/ui at phone size: running, succeeded and failed imports and the last sync pass', async () => {
    await waitFor(ids.running!, (v) => v.status === 'running' && v.progress.bytesCopied > 4 * MB, 90_000);
    for (
      const deadline = Date.now() + 30_000;
      (await fetch(`${api()}/syncs/latest`, { headers: withKey })).status !== 200;
    ) {
      if (Date.now() > deadline) throw new Error('no sync pass');
      await new Promise((r) => setTimeout(r, 500));
    }
    const raw = await fetch(`${api()}/ui?code=${KEY}`);
    expect(raw.headers.get('content-security-policy')).toMatch(
      /^default-src 'none'; script-src 'nonce-[A-Za-z0-9+/=]+'; style-src 'nonce-/,
    );
    const browser = await Browser.launch();
    try {
      const page = await browser.open(`${api()}/ui?code=${KEY}`);
      await page.waitFor(
        "document.body.dataset.state === 'ready' && !document.getElementById('sync').textContent.startsWith('No ')",
      );
      const dom = await page.evaluate<{
        items: { id: string; status: string; text: string; max: number; value: number }[];
        sync: string;
        overflow: boolean;
        updated: string;
      }>(`({
        items: [...document.querySelectorAll('li.import')].map((li) => ({ id: li.dataset.id, status: li.dataset.status, text: li.textContent,
          max: li.querySelector('progress').max, value: li.querySelector('progress').value })),
        sync: document.getElementById('sync').textContent, updated: document.getElementById('updated').textContent,
        overflow: document.documentElement.scrollWidth > window.innerWidth })`);
      const byId = new Map(dom.items.map((i) => [i.id, i]));
      expect(byId.get(ids.running!)).toMatchObject({
        status: 'running',
        text: expect.stringContaining(`${far.host}/team/slow:1 → ${dst.host}/cli/slow:1`),
      });
      expect(byId.get(ids.running!)!.value).toBeGreaterThan(0);
      expect(byId.get(ids.running!)!.value).toBeLessThan(byId.get(ids.running!)!.max);
      expect(byId.get(ids.succeeded!)).toMatchObject({ status: 'succeeded', text: expect.stringContaining('blobs') });
      expect(byId.get(ids.failed!)).toMatchObject({
        status: 'failed',
        text: expect.stringContaining('[SOURCE_NOT_FOUND]'),
      });
      expect(dom.sync).toMatch(/^Last sync pass .* 1 rule\(s\), 1 tag\(s\) seen/);
      expect(dom.updated).toContain('refreshing every 5 s');
      expect(dom.overflow).toBe(false); // readable on a phone: nothing wider than the screen
      expect(page.messages.filter((m) => /Content Security Policy|exception|console\.error/i.test(m))).toEqual([]);
      const png = await page.screenshot();
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      if (process.env.OCI_IMPORT_SCREENSHOT) await writeFile(process.env.OCI_IMPORT_SCREENSHOT, png);
    } finally {
      await browser.close();
    }
  }, 120_000);

  it('a 300 MB import canceled after 2 s ends canceled: its upload session is gone, nothing is tagged, and the list shows it', async () => {
    const res = await post({ source: `${farBig.host}/team/big:1`, images: ['op/big:1'], credential: 'src' });
    const { id } = (await res.json()) as { id: string };
    // Every session the import opens is to be canceled on the target. distribution keeps a session as
    // _uploads/<uuid>/{startedat,data}; its DELETE removes both (and, a registry quirk, may write an empty
    // hashstates/ folder back afterwards: distribution/distribution#1697, #4869), so a live session is one with
    // either file left.
    const uploads = join(dst.dir, 'data', 'docker', 'registry', 'v2', 'repositories', 'op', 'big', '_uploads');
    const live = async () =>
      existsSync(uploads)
        ? (await readdir(uploads, { recursive: true })).filter((f) => /(^|\/)(startedat|data)$/.test(String(f)))
        : [];
    // 2 s in, and (should the queue be slow to deliver) once the layer's upload is under way: the cancel must meet a running step
    await new Promise((r) => setTimeout(r, 2000));
    for (const deadline = Date.now() + 60_000; !(await live()).some((f) => String(f).endsWith('data'));) {
      if (Date.now() > deadline) throw new Error(`the layer's upload never started: ${JSON.stringify(await view(id))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const before = await view(id);
    expect(ended(before), JSON.stringify(before)).toBe(false);
    const cancel = await fetch(`${api()}/imports/${id}/cancel`, { method: 'POST', headers: withKey });
    expect(cancel.status).toBe(202);
    expect(((await cancel.json()) as View).status).toBe('canceled');

    for (const deadline = Date.now() + 60_000; (await live()).length > 0;) {
      if (Date.now() > deadline)
        throw new Error(
          `upload sessions left: ${(await live()).join(', ')}\n${host
            .output()
            .split('\n')
            .filter((l) => l.includes(id))
            .join('\n')}`,
        );
      await new Promise((r) => setTimeout(r, 250));
    }
    await new Promise((r) => setTimeout(r, 3000)); // a step of the job still queued has had its turn
    const after = await view(id);
    expect(after).toMatchObject({ status: 'canceled', error: { code: 'CANCELED' } });
    expect(after.progress.bytesCopied).toBeLessThan(after.progress.bytesTotal);
    expect((await fetch(`http://${dst.host}/v2/op/big/manifests/1`, { method: 'HEAD' })).status).toBe(404);
    expect(await live()).toEqual([]);

    const list = await fetch(`${api()}/imports?limit=5`, { headers: withKey });
    const page = (await list.json()) as { value: View[]; nextLink?: string };
    expect(page.value[0]).toMatchObject({ id, status: 'canceled' });
    expect(page.nextLink).toMatch(new RegExp(`^${api()}/imports\\?limit=5&continuationToken=`));
    const canceled = (await fetch(`${api()}/imports?status=canceled`, { headers: withKey }).then((r) => r.json())) as {
      value: View[];
    };
    expect(canceled.value.map((v) => v.id)).toEqual([id]);
    const twice = await fetch(`${api()}/imports/${id}/cancel`, { method: 'POST', headers: withKey });
    expect(twice.status).toBe(409);
    expect(await twice.json()).toMatchObject({ error: { code: 'IMPORT_ENDED' }, import: { status: 'canceled' } });

    const cli = await runCli(['cancel', ids.running!, '--endpoint', api()], cliEnv());
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toBe(`canceled ${ids.running}\n`);
  }, 180_000);

  it('/api/openapi.json is OpenAPI 3.1; every documented route answers 401 without a key and 403 to a foreign Origin', async () => {
    const res = await fetch(`${api()}/openapi.json`, { headers: withKey });
    const doc = (await res.json()) as {
      openapi: string;
      servers: { url: string }[];
      paths: Record<string, Record<string, { responses: Record<string, { 'x-produced-by'?: string }> }>>;
    };
    expect(await new Validator().validate(structuredClone(doc))).toEqual({ valid: true });
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(doc.servers[0]!.url).toBe(api());
    let checked = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const url = `${api()}${path.replace('{id}', ids.succeeded!)}`;
        const host401 = await fetch(url, { method: method.toUpperCase() });
        expect([url, host401.status, await host401.text()]).toEqual([url, 401, '']);
        const host403 = await fetch(url, {
          method: method.toUpperCase(),
          headers: { ...withKey, origin: 'https://evil.example' },
        });
        expect([url, host403.status]).toEqual([url, 403]);
        expect(op.responses['401']?.['x-produced-by']).toBe('host');
        expect(op.responses['403']?.['x-produced-by']).toBe('host');
        checked++;
      }
    }
    expect(checked).toBe(7);
    const huge = await fetch(`${api()}/imports`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...withKey },
      body: JSON.stringify({ source: 'x'.repeat(BODY_LIMIT) }),
    });
    expect([huge.status, await huge.text()]).toEqual([413, '']);
  });

  it('never wrote the key or a password into the host log', () => {
    const out = host.output();
    expect(out.length).toBeGreaterThan(100);
    expect(out).not.toContain(KEY);
    expect(out).not.toContain(src.password!);
  });
});
