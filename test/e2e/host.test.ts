/**
 * End to end, as a user runs it: the local Functions host as a separate process (the same registered
 * functions Azure runs) on Azurite, real registries on both sides, results checked with skopeo.
 * - a 3-platform import over HTTP with a function key (LOCAL_HOST_FUNCTION_KEY, as Azure demands it):
 *   202 → poll the statusUrl with the key → succeeded, identical digest under both tags; no key: empty 401;
 * - bad requests: 4xx with a code, nothing queued; a chunked body arrives empty (400, as in Azure); the app's
 *   JSON 413 up to the Bicep's FUNCTIONS_REQUEST_BODY_SIZE_LIMIT, the host's empty 413 above it;
 * - the host SIGKILLed in the middle of a 300 MB blob (streamed by its first step, 2 s steps), started again:
 *   the next step finds the session holding more than its checkpoint says, starts a new one, and the job
 *   finishes with an intact image; the inline password never appears in the host's output;
 * - the sync timer mirrors the selected tags through the same queue.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost, type HostProcess } from '../host/host-process.js';
import { startAzurite, type RunningAzurite } from '../support/azurite.js';
import { buildImage, type BuiltImage } from '../support/fixtures.js';
import { requireRegistryTools, startRegistry, type RunningRegistry } from '../support/registry.js';
import { copyAllToDir, manifestDigest, pushOciLayout } from '../support/skopeo.js';

const hasTools = requireRegistryTools();
const MB = 1_000_000;
const KEY = randomBytes(16).toString('hex');
/** infra/modules/function-app.bicep `requestBodySizeLimit`. */
const BODY_LIMIT = 1_048_576;

interface Status {
  status: string;
  digest?: string;
  error?: { code: string; message: string };
  progress: { bytesCopied: number; bytesTotal: number; blobsDone: number; blobsTotal: number };
}

describe.skipIf(!hasTools)('local host end to end', () => {
  let azurite: RunningAzurite;
  let src: RunningRegistry;
  let dst: RunningRegistry;
  let host: HostProcess | undefined;
  let work: string;
  let multi: BuiltImage;
  let big: BuiltImage;
  const logs: string[] = [];

  const hostEnv = () => ({
    AzureWebJobsStorage: azurite.connectionString,
    TARGET_REGISTRY: dst.host,
    INSECURE_REGISTRIES: `${src.host},${dst.host}`,
    ALLOWED_SOURCES: src.host,
    // CHUNK_SIZE not set, as deployed: a blob's first step streams, later steps send 8 MiB PATCHes
    STEP_BUDGET_SECONDS: '2',
    CREDENTIAL_KEY: Buffer.alloc(32, 9).toString('base64'),
    IMPORT_QUEUE: 'imports',
    SYNC_SCHEDULE: '*/3 * * * * *',
    SYNC_RULES: JSON.stringify([
      {
        source: `${src.host}/sync/app`,
        target: 'mirror/sync-app',
        tags: { include: ['^v[0-9]+$'] },
        credential: 'src',
      },
    ]),
    REGISTRY_CREDENTIALS__src__USERNAME: src.username!,
    REGISTRY_CREDENTIALS__src__PASSWORD: src.password!,
    REGISTRY_CREDENTIALS__src__REGISTRIES: src.host,
    LOCAL_HOST_QUEUE_LEASE_SECONDS: '3',
    LOCAL_HOST_FUNCTION_KEY: KEY,
    FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: String(BODY_LIMIT),
  });
  const launch = async () => {
    host = await startHost({
      args: ['--main', 'functions/*.ts', '--port', '0', '--no-azurite'],
      env: hostEnv(),
      readyTimeoutMs: 60_000,
    });
  };
  const withKey = { 'x-functions-key': KEY };
  const post = (body: unknown) =>
    fetch(`${host!.url}/api/imports`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...withKey },
      body: JSON.stringify(body),
    });
  const status = async (id: string): Promise<Status> =>
    (await fetch(`${host!.url}/api/imports/${id}`, { headers: withKey })).json() as Promise<Status>;
  const waitFor = async (id: string, done: (s: Status) => boolean, timeoutMs: number): Promise<Status> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await status(id);
      if (done(s)) return s;
      if (Date.now() > deadline)
        throw new Error(`job ${id} still ${JSON.stringify(s)}\n${host?.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'oci-import-e2e-'));
    [azurite, src, dst] = await Promise.all([startAzurite(), startRegistry({ auth: 'htpasswd' }), startRegistry()]);
    const creds = { username: src.username!, password: src.password! };
    multi = await buildImage({
      dir: join(work, 'multi'),
      seed: 'e2e-multi',
      layersPerPlatform: 2,
      layerSize: 300_000,
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
        { os: 'linux', architecture: 's390x' },
      ],
    });
    big = await buildImage({
      dir: join(work, 'big'),
      seed: 'e2e-big',
      layersPerPlatform: 1,
      layerSize: 300 * MB,
      streamLayers: true,
    });
    await pushOciLayout(multi.layoutDir, `${src.host}/team/multi:1.0`, creds);
    await pushOciLayout(big.layoutDir, `${src.host}/team/big:1`, creds);
    for (const tag of ['v1', 'v2', 'dev-1']) {
      const img = await buildImage({ dir: join(work, `sync-${tag}`), seed: `e2e-sync-${tag}`, layerSize: 10_000 });
      await pushOciLayout(img.layoutDir, `${src.host}/sync/app:${tag}`, creds);
    }
    await launch();
  }, 300_000);

  afterAll(async () => {
    if (host) logs.push(host.output());
    await host?.stop('SIGTERM');
    await Promise.all([azurite?.stop(), src?.stop(), dst?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('imports a 3-platform index under two tags with a function key: 202, poll the statusUrl, succeeded with the same digest', async () => {
    const request = {
      source: `${src.host}/team/multi:1.0`,
      images: ['e2e/multi:1.0', 'e2e/multi:stable'],
      credential: 'src',
    };
    const anonymous = await fetch(`${host!.url}/api/imports`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request),
    });
    expect(anonymous.status).toBe(401);
    expect(await anonymous.text()).toBe('');

    const res = await post(request);
    expect(res.status).toBe(202);
    const body = (await res.json()) as { id: string; statusUrl: string };
    expect(res.headers.get('location')).toBe(body.statusUrl);
    expect((await fetch(body.statusUrl)).status).toBe(401); // the statusUrl carries no key: clients send theirs
    let s: Status;
    for (const deadline = Date.now() + 120_000; ;) {
      const polled = await fetch(body.statusUrl, { headers: withKey });
      expect(polled.status).toBe(200);
      s = (await polled.json()) as Status;
      if (s.status === 'succeeded' || s.status === 'failed') break;
      if (Date.now() > deadline) throw new Error(`job still ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(s.error).toBeUndefined();
    expect(s.digest).toBe(multi.digest);
    expect(s.progress.blobsDone).toBe(s.progress.blobsTotal);
    expect(await manifestDigest(`${dst.host}/e2e/multi:1.0`)).toBe(multi.digest);
    expect(await manifestDigest(`${dst.host}/e2e/multi:stable`)).toBe(multi.digest);
    await copyAllToDir(`${dst.host}/e2e/multi:stable`, join(work, 'out-multi'));
  });

  it('answers bad requests with a 4xx and a code, queueing nothing', async () => {
    const cases: [unknown, string][] = [
      [{ source: 'docker.io/Library/nginx:1' }, 'INVALID_REFERENCE'],
      [{ source: `${src.host}/team/multi:1.0`, imgaes: ['x:1'] }, 'UNKNOWN_FIELD'],
      [{ source: '169.254.169.254/latest:1' }, 'SOURCE_NOT_ALLOWED'],
      [{ source: `${src.host}/team/multi@sha256:abc` }, 'INVALID_REFERENCE'],
    ];
    for (const [body, code] of cases) {
      const res = await post(body);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
    }
    const raw = await fetch(`${host!.url}/api/imports`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...withKey },
      body: '{"source": ',
    });
    expect(raw.status).toBe(400);
    // what a web page may send cross-site without asking first: refused before anything is parsed
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', undefined]) {
      const simple = await fetch(`${host!.url}/api/imports`, {
        method: 'POST',
        headers: type ? { 'content-type': type, ...withKey } : withKey,
        body: JSON.stringify({ source: `${src.host}/team/multi:1.0` }),
      });
      expect(simple.status).toBe(415);
      expect(((await simple.json()) as { error: { code: string } }).error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    }
  });

  it("answers bodies as Azure does: chunked arrives empty (400), the app's JSON 413 below the host cap, the host's empty 413 above", async () => {
    const send = (body: Buffer, chunked: boolean) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        let status: number | undefined;
        let text = '';
        const req = httpRequest(
          `${host!.url}/api/imports`,
          { method: 'POST', headers: { 'content-type': 'application/json', ...withKey } },
          (res) => {
            status = res.statusCode ?? 0;
            res.setEncoding('utf8');
            res.on('data', (c: string) => {
              text += c;
            });
            res.on('end', () => resolve({ status: status!, text }));
          },
        );
        req.on('error', (err) => (status === undefined ? reject(err) : resolve({ status, text })));
        if (chunked) req.setHeader('transfer-encoding', 'chunked');
        else req.setHeader('content-length', String(body.length));
        req.end(body);
      });
    const valid = Buffer.from(
      JSON.stringify({ source: `${src.host}/team/multi:1.0`, images: ['e2e/chunked:1'], credential: 'src' }),
    );
    const chunked = await send(valid, true);
    expect(chunked.status).toBe(400);
    expect((JSON.parse(chunked.text) as { error: { code: string } }).error.code).toBe('INVALID_JSON');

    const padded = (size: number) =>
      Buffer.from(
        JSON.stringify({ source: `${src.host}/team/multi:1.0`, images: ['e2e/big:1'], registry: 'x'.repeat(size) }),
      );
    const overApp = await send(padded(70 * 1024), false);
    expect(overApp.status).toBe(413);
    expect((JSON.parse(overApp.text) as { error: { code: string } }).error.code).toBe('BODY_TOO_LARGE');
    const overHost = await send(padded(BODY_LIMIT), false);
    expect(overHost).toEqual({ status: 413, text: '' });
  });

  it('survives SIGKILL in the middle of a 300 MB blob and finishes after a restart', async () => {
    const res = await post({
      source: `${src.host}/team/big:1`,
      images: ['e2e/big:1'],
      username: src.username,
      password: src.password,
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    // Killed once the target holds more than 40 MB of the layer's upload (distribution writes a session's bytes
    // to _uploads/<uuid>/data as they arrive): the job's progress shows only at step ends, and on an idle
    // machine one 2 s step can copy the whole 300 MB over loopback.
    const uploads = join(dst.dir, 'data', 'docker', 'registry', 'v2', 'repositories', 'e2e', 'big', '_uploads');
    const uploaded = async (): Promise<number> => {
      const sessions = await readdir(uploads).catch(() => [] as string[]);
      const sizes = await Promise.all(
        sessions.map((u) =>
          stat(join(uploads, u, 'data')).then(
            (f) => f.size,
            () => 0,
          ),
        ),
      );
      return Math.max(0, ...sizes);
    };
    for (const deadline = Date.now() + 120_000; (await uploaded()) <= 40 * MB;) {
      if (Date.now() > deadline)
        throw new Error(`no upload of the layer in progress: ${JSON.stringify(await status(id))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const before = await status(id);
    await host!.stop('SIGKILL');
    expect(before.status).toBe('running');
    expect(before.progress.bytesCopied).toBeLessThan(before.progress.bytesTotal);
    logs.push(host!.output());

    await launch();
    const after = await waitFor(id, (x) => x.status === 'succeeded' || x.status === 'failed', 240_000);
    expect(after.error).toBeUndefined();
    expect(after.status).toBe('succeeded');
    expect(after.digest).toBe(big.digest);
    expect(await manifestDigest(`${dst.host}/e2e/big:1`)).toBe(big.digest);
    const layer = big.blobs.find((b) => b.size > 100 * MB)!;
    const head = await fetch(`http://${dst.host}/v2/e2e/big/blobs/${layer.digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBe(layer.size);
    await copyAllToDir(`${dst.host}/e2e/big:1`, join(work, 'out-big'));
  }, 400_000);

  it('mirrors the selected tags on the sync timer, through the import queue', { timeout: 150_000 }, async () => {
    const deadline = Date.now() + 60_000;
    let tags: string[] = [];
    while (Date.now() < deadline) {
      const list = (await fetch(`http://${dst.host}/v2/mirror/sync-app/tags/list`).then((r) => r.json())) as {
        tags?: string[] | null;
      };
      tags = [...(list.tags ?? [])].sort();
      if (tags.length >= 2) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const latest = await fetch(`${host!.url}/api/syncs/latest`, { headers: withKey });
    const text = await latest.clone().text();
    expect(tags, text).toEqual(['v1', 'v2']);
    expect(latest.status).toBe(200);
    const report = (await latest.json()) as { rules: number; tagsSeen: number };
    expect(report.rules).toBe(1);
    expect(report.tagsSeen).toBe(3);
  });

  it('never wrote a password into the host log', () => {
    const all = [...logs, host?.output() ?? ''].join('\n');
    expect(all.length).toBeGreaterThan(100);
    expect(all).not.toContain(src.password!);
    expect(all).not.toContain(KEY);
  });
});
