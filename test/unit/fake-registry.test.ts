import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeRegistry } from '../support/fake-registry.js';
import type { FakeRegistry } from '../support/fake-registry.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const OCTET = 'application/octet-stream';

function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

async function codes(res: Response): Promise<string[]> {
  const body = (await res.json()) as { errors: { code: string }[] };
  return body.errors.map((e) => e.code);
}

function location(res: Response): string {
  const loc = res.headers.get('location');
  if (!loc) throw new Error(`no Location in ${res.status} response`);
  return loc;
}

function withDigest(loc: string, digest: string): string {
  return `${loc}${loc.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

function patch(loc: string, body: Uint8Array, start?: number, headers: Record<string, string> = {}): Promise<Response> {
  const h: Record<string, string> = { 'Content-Type': OCTET, ...headers };
  if (start !== undefined) h['Content-Range'] = `${start}-${start + body.length - 1}`;
  return fetch(loc, { method: 'PATCH', headers: h, body });
}

function imageManifest(config: Uint8Array, layers: Uint8Array[], mediaType = OCI_MANIFEST): Uint8Array {
  const json = {
    schemaVersion: 2,
    mediaType,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: layers.map((l) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: sha256(l),
      size: l.length,
    })),
  };
  return new TextEncoder().encode(JSON.stringify(json));
}

describe('fake registry: basics and uploads (distribution 2.8 mode)', () => {
  let reg: FakeRegistry;
  beforeAll(async () => {
    reg = await startFakeRegistry({ chunkMinLength: 4 });
  });
  afterAll(() => reg.close());
  afterEach(() => reg.reset());

  it('answers GET /v2/ and 404s unknown routes', async () => {
    expect(reg.url).toBe(`http://${reg.host}`);
    const res = await fetch(`${reg.url}/v2/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect((await fetch(`${reg.url}/v2/a/referrers/${sha256(bytes(1))}`)).status).toBe(404);
  });

  it('runs a chunked upload with status, records requests, and links the blob only in that repo', async () => {
    const data = bytes(10);
    const digest = sha256(data);
    const post = await fetch(`${reg.url}/v2/org/app/blobs/uploads/`, { method: 'POST' });
    expect(post.status).toBe(202);
    expect(post.headers.get('range')).toBe('0-0');
    expect(post.headers.get('oci-chunk-min-length')).toBe('4');
    const uuid = post.headers.get('docker-upload-uuid');
    expect(uuid).toBeTruthy();
    let loc = location(post);
    expect(loc).toMatch(new RegExp(`^${reg.url}/v2/org/app/blobs/uploads/${uuid}\\?_state=`));

    const p1 = await patch(loc, data.subarray(0, 6), 0);
    expect(p1.status).toBe(202);
    expect(p1.headers.get('range')).toBe('0-5');
    loc = location(p1);

    const status = await fetch(loc);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-5');
    loc = location(status);

    const p2 = await patch(loc, data.subarray(6), 6);
    expect(p2.status).toBe(202);
    expect(p2.headers.get('range')).toBe('0-9');

    const put = await fetch(withDigest(location(p2), digest), { method: 'PUT' });
    expect(put.status).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(digest);
    expect(location(put)).toBe(`${reg.url}/v2/org/app/blobs/${digest}`);
    expect(reg.getBlob(digest)).toEqual(Buffer.from(data));

    const head = await fetch(`${reg.url}/v2/org/app/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('10');
    expect(head.headers.get('docker-content-digest')).toBe(digest);
    expect(head.headers.get('content-type')).toBe(OCTET);
    // Global by digest, but not linked into another repository.
    const other = await fetch(`${reg.url}/v2/org/other/blobs/${digest}`);
    expect(other.status).toBe(404);
    expect(await codes(other)).toEqual(['BLOB_UNKNOWN']);

    const patches = reg.requests.filter((r) => r.method === 'PATCH');
    expect(patches.map((r) => r.bodyLength)).toEqual([6, 4]);
    expect(patches[0]?.headers['content-range']).toBe('0-5');
  });

  it('refuses a stale _state with 404 BLOB_UPLOAD_INVALID and keeps the session: its newest Location goes on', async () => {
    const post = await fetch(`${reg.url}/v2/app/blobs/uploads/`, { method: 'POST' });
    const loc0 = location(post);
    const loc1 = location(await patch(loc0, bytes(4), 0));
    const loc2 = location(await patch(loc1, bytes(4, 2), 4));
    expect(loc2).not.toBe(loc1);

    for (const stale of [
      await patch(loc1, bytes(4, 2), 4),
      await fetch(loc0),
      await fetch(loc1, { method: 'DELETE' }),
    ]) {
      expect(stale.status).toBe(404);
      expect(await codes(stale)).toEqual(['BLOB_UPLOAD_INVALID']);
    }

    const kept = await fetch(loc2);
    expect(kept.status).toBe(204);
    expect(kept.headers.get('range')).toBe('0-7');
    const next = await patch(loc2, bytes(4, 3), 8);
    expect(next.status).toBe(202);
    expect(next.headers.get('range')).toBe('0-11');

    const noState = await fetch(loc2.replace(/\?.*$/, ''));
    expect(await codes(noState)).toEqual(['BLOB_UPLOAD_INVALID']);
    expect((await fetch(location(next), { method: 'DELETE' })).status).toBe(204);
  });

  it('a stale GET status is refused too, and the session stays', async () => {
    const loc0 = location(await fetch(`${reg.url}/v2/app/blobs/uploads/`, { method: 'POST' }));
    const loc1 = location(await patch(loc0, bytes(4), 0));
    const st = await fetch(loc0);
    expect(st.status).toBe(404);
    expect(await codes(st)).toEqual(['BLOB_UPLOAD_INVALID']);
    const kept = await fetch(loc1);
    expect(kept.status).toBe(204);
    expect(kept.headers.get('range')).toBe('0-3');
  });

  it('resetAfterBody applies the PATCH, loses the response, and the old Location is then refused', async () => {
    const loc0 = location(await fetch(`${reg.url}/v2/app/blobs/uploads/`, { method: 'POST' }));
    const loc1 = location(await patch(loc0, bytes(4), 0));
    reg.faults.push({ method: 'PATCH', path: /\/blobs\/uploads\//, times: 1, action: { kind: 'resetAfterBody' } });
    await expect(patch(loc1, bytes(5), 4)).rejects.toThrow();
    expect(reg.requests.at(-1)?.bodyLength).toBe(5);
    expect(reg.faults[0]?.times).toBe(0);

    const st = await fetch(loc1);
    expect(st.status).toBe(404);
    expect(await codes(st)).toEqual(['BLOB_UPLOAD_INVALID']);
  });

  it('refuses a wrong Content-Range start with 416 and keeps the session', async () => {
    const loc0 = location(await fetch(`${reg.url}/v2/app/blobs/uploads/`, { method: 'POST' }));
    const loc1 = location(await patch(loc0, bytes(4), 0));
    const bad = await patch(loc1, bytes(4), 8);
    expect(bad.status).toBe(416);
    expect(await codes(bad)).toEqual(['RANGE_INVALID']);
    const st = await fetch(loc1);
    expect(st.status).toBe(204);
    expect(st.headers.get('range')).toBe('0-3');
  });

  it('refuses a bad PATCH Content-Type like distribution (500 UNKNOWN)', async () => {
    const loc0 = location(await fetch(`${reg.url}/v2/app/blobs/uploads/`, { method: 'POST' }));
    const res = await patch(loc0, bytes(4), 0, { 'Content-Type': 'application/json' });
    expect(res.status).toBe(500);
    expect(await codes(res)).toEqual(['UNKNOWN']);
  });

  it('refuses a digest mismatch on PUT with DIGEST_INVALID and cancels the upload', async () => {
    const loc0 = location(await fetch(`${reg.url}/v2/app/blobs/uploads/`, { method: 'POST' }));
    const loc1 = location(await patch(loc0, bytes(4), 0));
    const put = await fetch(withDigest(loc1, sha256(bytes(5))), { method: 'PUT' });
    expect(put.status).toBe(400);
    expect(await codes(put)).toEqual(['DIGEST_INVALID']);
    expect(await codes(await fetch(loc1))).toEqual(['BLOB_UPLOAD_UNKNOWN']);
  });

  it('accepts a final chunk in the PUT body, and a DELETE cancels a session', async () => {
    const data = bytes(9);
    const loc0 = location(await fetch(`${reg.url}/v2/app/blobs/uploads/`, { method: 'POST' }));
    const loc1 = location(await patch(loc0, data.subarray(0, 5), 0));
    const put = await fetch(withDigest(loc1, sha256(data)), {
      method: 'PUT',
      headers: { 'Content-Type': OCTET, 'Content-Range': '5-8' },
      body: data.subarray(5),
    });
    expect(put.status).toBe(201);

    const loc2 = location(await fetch(`${reg.url}/v2/app/blobs/uploads/`, { method: 'POST' }));
    expect((await fetch(loc2, { method: 'DELETE' })).status).toBe(204);
    expect(await codes(await fetch(loc2))).toEqual(['BLOB_UPLOAD_UNKNOWN']);
  });

  it('enforces OCI-Chunk-Min-Length on non-final chunks only', async () => {
    const loc0 = location(await fetch(`${reg.url}/v2/app/blobs/uploads/`, { method: 'POST' }));
    const loc1 = location(await patch(loc0, bytes(2), 0)); // short: fine if it is the last one
    const refused = await patch(loc1, bytes(4), 2);
    expect(refused.status).toBe(400);
    expect(await codes(refused)).toEqual(['SIZE_INVALID']);
    // the short chunk was the last one after all: a body-less PUT completes
    const done = await fetch(withDigest(loc1, sha256(bytes(2))), { method: 'PUT' });
    expect(done.status).toBe(201);
  });

  it('supports monolithic POST ?digest=', async () => {
    const data = bytes(7);
    const res = await fetch(`${reg.url}/v2/mono/blobs/uploads/?digest=${sha256(data)}`, {
      method: 'POST',
      headers: { 'Content-Type': OCTET },
      body: data,
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('docker-content-digest')).toBe(sha256(data));
    expect((await fetch(`${reg.url}/v2/mono/blobs/${sha256(data)}`, { method: 'HEAD' })).status).toBe(200);
  });

  it('mounts a blob linked in `from`, else starts a new session', async () => {
    const digest = reg.putBlob('src/repo', bytes(20));
    expect((await fetch(`${reg.url}/v2/dst/repo/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
    const ok = await fetch(`${reg.url}/v2/dst/repo/blobs/uploads/?mount=${digest}&from=src/repo`, { method: 'POST' });
    expect(ok.status).toBe(201);
    expect(ok.headers.get('docker-content-digest')).toBe(digest);
    expect((await fetch(`${reg.url}/v2/dst/repo/blobs/${digest}`, { method: 'HEAD' })).status).toBe(200);

    const miss = await fetch(`${reg.url}/v2/dst/repo/blobs/uploads/?mount=${digest}&from=elsewhere`, {
      method: 'POST',
    });
    expect(miss.status).toBe(202);
    expect(location(miss)).toContain('/v2/dst/repo/blobs/uploads/');
  });
});

describe('fake registry: spec mode (no _state check)', () => {
  let reg: FakeRegistry;
  beforeAll(async () => {
    reg = await startFakeRegistry({ distributionStateCheck: false });
  });
  afterAll(() => reg.close());

  it('uses plain Locations and answers status by UUID after a lost response', async () => {
    const loc0 = location(await fetch(`${reg.url}/v2/app/blobs/uploads/`, { method: 'POST' }));
    expect(loc0).not.toContain('?');
    reg.faults = [{ method: 'PATCH', times: 1, action: { kind: 'resetAfterBody' } }];
    await expect(patch(loc0, bytes(4), 0)).rejects.toThrow();
    const st = await fetch(loc0);
    expect(st.status).toBe(204);
    expect(st.headers.get('range')).toBe('0-3');
    const replay = await patch(loc0, bytes(4), 0);
    expect(replay.status).toBe(416);
  });
});

describe('fake registry: blob GET, Range and body faults', () => {
  let reg: FakeRegistry;
  const data = bytes(100);
  let digest: string;
  let blobUrl: string;
  beforeAll(async () => {
    reg = await startFakeRegistry();
  });
  afterAll(() => reg.close());
  afterEach(() => {
    reg.faults = [];
  });
  beforeAll(() => {
    digest = reg.putBlob('lib/img', data);
    blobUrl = `${reg.url}/v2/lib/img/blobs/${digest}`;
  });

  it('serves the full blob and 206 for a closed range', async () => {
    const full = await fetch(blobUrl);
    expect(full.status).toBe(200);
    expect(new Uint8Array(await full.arrayBuffer())).toEqual(data);

    const part = await fetch(blobUrl, { headers: { Range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe('bytes 10-19/100');
    expect(part.headers.get('content-length')).toBe('10');
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(data.subarray(10, 20));
  });

  it.each(['bytes=10-', 'bytes=-10', 'bytes=50-100', 'bytes=20-10', 'bytes=0-1,5-6', 'items=0-1'])(
    'answers 416 for %s',
    async (range) => {
      const res = await fetch(blobUrl, { headers: { Range: range } });
      expect(res.status).toBe(416);
      expect(res.headers.get('content-range')).toBe('bytes */100');
      await res.arrayBuffer();
    },
  );

  it('ignoreRange answers 200 with the whole body, once', async () => {
    reg.faults.push({ method: 'GET', path: /\/blobs\/sha256:/, times: 1, action: { kind: 'ignoreRange' } });
    const res = await fetch(blobUrl, { headers: { Range: 'bytes=10-19' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-range')).toBeNull();
    expect((await res.arrayBuffer()).byteLength).toBe(100);
    expect((await fetch(blobUrl, { headers: { Range: 'bytes=10-19' } })).status).toBe(206);
  });

  it('shortBody sends correct headers then drops the connection', async () => {
    reg.faults.push({ method: 'GET', times: 1, action: { kind: 'shortBody', bytes: 3 } });
    const res = await fetch(blobUrl, { headers: { Range: 'bytes=0-49' } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-length')).toBe('50');
    await expect(res.arrayBuffer()).rejects.toThrow();
  });

  it('longContentRange answers a 206 that does not match the request', async () => {
    reg.faults.push({ times: 1, action: { kind: 'longContentRange' } });
    const res = await fetch(blobUrl, { headers: { Range: 'bytes=0-9' } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe('bytes 0-99/100');
    expect((await res.arrayBuffer()).byteLength).toBe(100);
  });

  it('injects a 429 with Retry-After, then behaves normally', async () => {
    reg.faults.push({
      path: /\/blobs\//,
      times: 1,
      action: { kind: 'status', status: 429, headers: { 'Retry-After': '2' } },
    });
    const res = await fetch(blobUrl, { method: 'GET' });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('2');
    expect(await codes(res)).toEqual(['TOOMANYREQUESTS']);
    expect((await fetch(blobUrl)).status).toBe(200);
  });

  it('reset destroys the connection; delay delays', async () => {
    reg.faults.push({ method: 'HEAD', times: 1, action: { kind: 'reset' } });
    await expect(fetch(blobUrl, { method: 'HEAD' })).rejects.toThrow();
    reg.faults = [{ times: 1, action: { kind: 'delay', ms: 150 } }];
    const t0 = Date.now();
    expect((await fetch(blobUrl, { method: 'HEAD' })).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  });
});

describe('fake registry: rangeSupport false', () => {
  let reg: FakeRegistry;
  beforeAll(async () => {
    reg = await startFakeRegistry({ rangeSupport: false });
  });
  afterAll(() => reg.close());

  it('ignores Range', async () => {
    const d = reg.putBlob('a', bytes(30));
    const res = await fetch(`${reg.url}/v2/a/blobs/${d}`, { headers: { Range: 'bytes=0-9' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('accept-ranges')).toBeNull();
    expect((await res.arrayBuffer()).byteLength).toBe(30);
  });
});

describe('fake registry: bearer auth', () => {
  let reg: FakeRegistry;
  beforeAll(async () => {
    reg = await startFakeRegistry({ auth: { kind: 'bearer', username: 'u', password: 'p' } });
  });
  afterAll(() => reg.close());

  async function token(scopes: string[], auth = basic('u', 'p')): Promise<Response> {
    const q = new URLSearchParams({ service: 'fake' });
    for (const s of scopes) q.append('scope', s);
    return fetch(`${reg.url}/token?${q.toString()}`, { headers: { Authorization: auth } });
  }

  async function tokenValue(scopes: string[]): Promise<string> {
    const res = await token(scopes);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { token: string; access_token: string; expires_in: number };
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBe(300);
    return body.token;
  }

  it('challenges, issues scoped tokens, and checks scope', async () => {
    const ping = await fetch(`${reg.url}/v2/`);
    expect(ping.status).toBe(401);
    expect(ping.headers.get('www-authenticate')).toBe(`Bearer realm="${reg.url}/token",service="fake"`);

    const digest = reg.putBlob('team/app', bytes(8));
    const anon = await fetch(`${reg.url}/v2/team/app/blobs/${digest}`);
    expect(anon.status).toBe(401);
    expect(await codes(anon)).toEqual(['UNAUTHORIZED']);
    expect(anon.headers.get('www-authenticate')).toBe(
      `Bearer realm="${reg.url}/token",service="fake",scope="repository:team/app:pull"`,
    );

    expect((await token(['repository:team/app:pull'], basic('u', 'wrong'))).status).toBe(401);
    const pull = await tokenValue(['repository:team/app:pull']);
    expect((await fetch(`${reg.url}/v2/`, { headers: { Authorization: `Bearer ${pull}` } })).status).toBe(200);
    expect(
      (await fetch(`${reg.url}/v2/team/app/blobs/${digest}`, { headers: { Authorization: `Bearer ${pull}` } })).status,
    ).toBe(200);

    const push = await fetch(`${reg.url}/v2/team/app/blobs/uploads/`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${pull}` },
    });
    expect(push.status).toBe(401);
    expect(push.headers.get('www-authenticate')).toContain(
      'scope="repository:team/app:pull,push",error="insufficient_scope"',
    );

    const both = await tokenValue(['repository:team/app:pull,push']);
    const ok = await fetch(`${reg.url}/v2/team/app/blobs/uploads/`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${both}` },
    });
    expect(ok.status).toBe(202);

    const bogus = await fetch(`${reg.url}/v2/`, { headers: { Authorization: 'Bearer nope' } });
    expect(bogus.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('mounts only when the token covers pull on `from`', async () => {
    const digest = reg.putBlob('src', bytes(12));
    const narrow = await tokenValue(['repository:dst:pull,push']);
    const url = `${reg.url}/v2/dst/blobs/uploads/?mount=${digest}&from=src`;
    expect((await fetch(url, { method: 'POST', headers: { Authorization: `Bearer ${narrow}` } })).status).toBe(202);
    const wide = await tokenValue(['repository:dst:pull,push', 'repository:src:pull']);
    expect((await fetch(url, { method: 'POST', headers: { Authorization: `Bearer ${wide}` } })).status).toBe(201);
  });
});

describe('fake registry: bearer token expiry and basic auth', () => {
  let bearer: FakeRegistry;
  let basicReg: FakeRegistry;
  beforeAll(async () => {
    bearer = await startFakeRegistry({ auth: { kind: 'bearer', tokenTtlSeconds: 0 } });
    basicReg = await startFakeRegistry({ auth: { kind: 'basic', username: 'alice', password: 's3cret' } });
  });
  afterAll(async () => {
    await bearer.close();
    await basicReg.close();
  });

  it('rejects an expired anonymous token', async () => {
    const res = await fetch(`${bearer.url}/token?service=fake&scope=repository:x:pull`);
    expect(res.status).toBe(200);
    const { token } = (await res.json()) as { token: string };
    const v2 = await fetch(`${bearer.url}/v2/`, { headers: { Authorization: `Bearer ${token}` } });
    expect(v2.status).toBe(401);
    expect(v2.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('basic auth', async () => {
    const no = await fetch(`${basicReg.url}/v2/`);
    expect(no.status).toBe(401);
    expect(no.headers.get('www-authenticate')).toBe('Basic realm="fake"');
    expect((await fetch(`${basicReg.url}/v2/`, { headers: { Authorization: basic('alice', 's3cret') } })).status).toBe(
      200,
    );
  });
});

describe('fake registry: redirect to another origin', () => {
  let reg: FakeRegistry;
  beforeAll(async () => {
    reg = await startFakeRegistry({ redirectBlobsTo: 'other', auth: { kind: 'basic', username: 'u', password: 'p' } });
  });
  afterAll(() => reg.close());

  it('answers 307 to a second listener that records Authorization', async () => {
    const data = bytes(64);
    const digest = reg.putBlob('r', data);
    const auth = { Authorization: basic('u', 'p') };
    const res = await fetch(`${reg.url}/v2/r/blobs/${digest}`, { headers: auth, redirect: 'manual' });
    expect(res.status).toBe(307);
    const target = location(res);
    expect(reg.redirectUrl).toBeDefined();
    expect(target.startsWith(`${reg.redirectUrl}/`)).toBe(true);
    expect(new URL(target).origin).not.toBe(reg.url);

    // HEAD is answered directly
    expect((await fetch(`${reg.url}/v2/r/blobs/${digest}`, { method: 'HEAD', headers: auth })).status).toBe(200);

    const ranged = await fetch(target, { headers: { Range: 'bytes=4-7' } });
    expect(ranged.status).toBe(206);
    expect(new Uint8Array(await ranged.arrayBuffer())).toEqual(data.subarray(4, 8));
    expect(reg.redirectAuthorizationSeen).toBe(false);

    // fetch's own redirect handling drops Authorization across origins
    const followed = await fetch(`${reg.url}/v2/r/blobs/${digest}`, { headers: auth });
    expect(followed.status).toBe(200);
    expect(new Uint8Array(await followed.arrayBuffer())).toEqual(data);
    expect(reg.redirectAuthorizationSeen).toBe(false);
    expect(reg.redirectRequests.length).toBe(2);

    // a careless client forwarding the header is detected
    await (await fetch(target, { headers: auth })).arrayBuffer();
    expect(reg.redirectAuthorizationSeen).toBe(true);

    // the storage listener applies body faults for redirected GETs
    reg.faults = [{ times: 1, action: { kind: 'ignoreRange' } }];
    const r2 = await fetch(`${reg.url}/v2/r/blobs/${digest}`, { headers: { ...auth, Range: 'bytes=0-9' } });
    expect(r2.status).toBe(200);
    expect((await r2.arrayBuffer()).byteLength).toBe(64);

    const forged = await fetch(target.replace(/sig=[^&]+/, 'sig=AAAA'));
    expect(forged.status).toBe(403);
    await forged.arrayBuffer();
  });

  it("'same' redirects to the same origin (fetch then forwards Authorization)", async () => {
    const same = await startFakeRegistry({ redirectBlobsTo: 'same' });
    try {
      const digest = same.putBlob('r', bytes(5));
      const res = await fetch(`${same.url}/v2/r/blobs/${digest}`, { redirect: 'manual' });
      expect(res.status).toBe(307);
      expect(location(res).startsWith(`${same.url}/_storage/blobs/`)).toBe(true);
      const followed = await fetch(`${same.url}/v2/r/blobs/${digest}`, { headers: { Authorization: 'Bearer x' } });
      expect(followed.status).toBe(200);
      expect((await followed.arrayBuffer()).byteLength).toBe(5);
      expect(same.redirectUrl).toBeUndefined();
      expect(same.redirectAuthorizationSeen).toBe(true);
    } finally {
      await same.close();
    }
  });

  it('expires signed URLs', async () => {
    const short = await startFakeRegistry({ redirectBlobsTo: 'other', redirectTtlSeconds: 0 });
    try {
      const digest = short.putBlob('r', bytes(5));
      const res = await fetch(`${short.url}/v2/r/blobs/${digest}`, { redirect: 'manual' });
      const expired = await fetch(location(res));
      expect(expired.status).toBe(403);
      expect(await expired.text()).toContain('expired');
    } finally {
      await short.close();
    }
  });
});

describe('fake registry: manifests and tags', () => {
  let reg: FakeRegistry;
  beforeAll(async () => {
    reg = await startFakeRegistry();
  });
  afterAll(() => reg.close());

  it('refuses image manifests and indexes whose references are absent', async () => {
    const config = bytes(30, 7);
    const layer = bytes(40, 9);
    const manifest = imageManifest(config, [layer]);
    const url = `${reg.url}/v2/m/app/manifests/v1`;
    const put = (u: string, body: Uint8Array, ct: string): Promise<Response> =>
      fetch(u, { method: 'PUT', headers: { 'Content-Type': ct }, body });

    const missing = await put(url, manifest, OCI_MANIFEST);
    expect(missing.status).toBe(400);
    expect(await codes(missing)).toEqual(['MANIFEST_BLOB_UNKNOWN', 'MANIFEST_BLOB_UNKNOWN']);

    reg.putBlob('m/app', config);
    reg.putBlob('other', layer); // linked elsewhere only
    expect(await codes(await put(url, manifest, OCI_MANIFEST))).toEqual(['MANIFEST_BLOB_UNKNOWN']);
    reg.putBlob('m/app', layer);
    const ok = await put(url, manifest, OCI_MANIFEST);
    expect(ok.status).toBe(201);
    const digest = sha256(manifest);
    expect(ok.headers.get('docker-content-digest')).toBe(digest);

    const index = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          { mediaType: OCI_MANIFEST, digest, size: manifest.length },
          { mediaType: OCI_MANIFEST, digest: sha256(bytes(3)), size: 3 },
        ],
      }),
    );
    const idx = await put(`${reg.url}/v2/m/app/manifests/multi`, index, OCI_INDEX);
    expect(idx.status).toBe(400);
    expect(await codes(idx)).toEqual(['MANIFEST_BLOB_UNKNOWN']);

    const wrongType = await put(`${reg.url}/v2/m/app/manifests/x`, manifest, DOCKER_MANIFEST);
    expect(await codes(wrongType)).toEqual(['MANIFEST_INVALID']);
    const wrongDigest = await put(`${reg.url}/v2/m/app/manifests/${sha256(bytes(1))}`, manifest, OCI_MANIFEST);
    expect(await codes(wrongDigest)).toEqual(['DIGEST_INVALID']);
  });

  it('serves exact bytes and honours Accept for OCI types like distribution', async () => {
    const config = bytes(10, 3);
    reg.putBlob('g', config);
    const manifest = imageManifest(config, []);
    const digest = reg.putManifest('g', 'latest', manifest, OCI_MANIFEST);
    expect(reg.getManifest('g', 'latest')?.digest).toBe(digest);

    const get = await fetch(`${reg.url}/v2/g/manifests/latest`, {
      headers: { Accept: `${DOCKER_MANIFEST}, ${OCI_MANIFEST}` },
    });
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe(OCI_MANIFEST);
    expect(get.headers.get('docker-content-digest')).toBe(digest);
    expect(new Uint8Array(await get.arrayBuffer())).toEqual(manifest);

    const head = await fetch(`${reg.url}/v2/g/manifests/${digest}`, {
      method: 'HEAD',
      headers: { Accept: OCI_MANIFEST },
    });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(manifest.length));

    const dockerOnly = await fetch(`${reg.url}/v2/g/manifests/latest`, { headers: { Accept: DOCKER_MANIFEST } });
    expect(dockerOnly.status).toBe(404);
    expect(await codes(dockerOnly)).toEqual(['MANIFEST_UNKNOWN']);

    // fetch's default `Accept: */*` does not count, as in distribution 2.8
    expect((await fetch(`${reg.url}/v2/g/manifests/latest`, { method: 'HEAD' })).status).toBe(404);

    const unknown = await fetch(`${reg.url}/v2/g/manifests/nope`);
    expect(await codes(unknown)).toEqual(['MANIFEST_UNKNOWN']);

    expect((await fetch(`${reg.url}/v2/g/manifests/latest`, { method: 'DELETE' })).status).toBe(202);
    expect(reg.tags('g')).toEqual([]);
    expect(reg.getManifest('g', digest)).toBeDefined();
  });

  it('paginates the tag list with Link', async () => {
    const config = bytes(5, 5);
    reg.putBlob('t', config);
    const manifest = imageManifest(config, []);
    for (const tag of ['e', 'a', 'd', 'c', 'b']) reg.putManifest('t', tag, manifest, OCI_MANIFEST);

    const all = await fetch(`${reg.url}/v2/t/tags/list`);
    expect(await all.json()).toEqual({ name: 't', tags: ['a', 'b', 'c', 'd', 'e'] });

    const seen: string[] = [];
    let next: string | undefined = `/v2/t/tags/list?n=2`;
    let pages = 0;
    while (next) {
      const res: Response = await fetch(`${reg.url}${next}`);
      expect(res.status).toBe(200);
      seen.push(...((await res.json()) as { tags: string[] }).tags);
      next = /^<([^>]+)>;\s*rel="next"$/.exec(res.headers.get('link') ?? '')?.[1];
      pages++;
    }
    expect(seen).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(pages).toBe(3);

    const first = await fetch(`${reg.url}/v2/t/tags/list?n=2`);
    expect(first.headers.get('link')).toBe('</v2/t/tags/list?last=b&n=2>; rel="next"');
    await first.arrayBuffer();

    const unknown = await fetch(`${reg.url}/v2/nobody/tags/list`);
    expect(unknown.status).toBe(404);
    expect(await codes(unknown)).toEqual(['NAME_UNKNOWN']);
  });
});

describe('fake registry: referrers API', () => {
  const put = (url: string, body: Uint8Array, type: string) =>
    fetch(url, { method: 'PUT', headers: { 'Content-Type': type }, body });
  /** An image and two referrers of it in repo `r`: a signature (artifactType from its config) and an SBOM (its own artifactType). */
  const seed = (reg: FakeRegistry) => {
    const config = bytes(8, 9);
    reg.putBlob('r', config);
    const subject = imageManifest(config, []);
    const subjectDigest = reg.putManifest('r', 'v1', subject, OCI_MANIFEST);
    const referrer = (extra: object) =>
      new TextEncoder().encode(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          layers: [],
          subject: { mediaType: OCI_MANIFEST, digest: subjectDigest, size: subject.length },
          ...extra,
        }),
      );
    const sig = referrer({
      config: {
        mediaType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
        digest: sha256(config),
        size: config.length,
      },
    });
    const sbom = referrer({
      artifactType: 'application/spdx+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(config), size: config.length },
      annotations: { k: 'v' },
    });
    return { subjectDigest, sig, sbom };
  };

  it('is absent by default, as in distribution 2.8 (a plain 404 page)', async () => {
    const reg = await startFakeRegistry();
    try {
      const { subjectDigest } = seed(reg);
      const res = await fetch(`${reg.url}/v2/r/referrers/${subjectDigest}`);
      expect(res.status).toBe(404);
      expect(await res.text()).toBe('404 page not found\n');
    } finally {
      await reg.close();
    }
  });

  it('lists by subject, answers OCI-Subject on PUT, filters and paginates when asked', async () => {
    const reg = await startFakeRegistry({ referrers: { filter: true, pageSize: 1 } });
    try {
      const { subjectDigest, sig, sbom } = seed(reg);
      for (const m of [sig, sbom]) {
        const res = await put(`${reg.url}/v2/r/manifests/${sha256(m)}`, m, OCI_MANIFEST);
        expect(res.status).toBe(201);
        expect(res.headers.get('oci-subject')).toBe(subjectDigest);
      }
      // a manifest without subject gets no OCI-Subject
      const plain = await put(`${reg.url}/v2/r/manifests/v2`, reg.getManifest('r', 'v1')!.bytes, OCI_MANIFEST);
      expect(plain.headers.get('oci-subject')).toBeNull();

      const seen: { digest: string; artifactType?: string; annotations?: object }[] = [];
      let next: string | undefined = `/v2/r/referrers/${subjectDigest}`;
      while (next) {
        const res: Response = await fetch(`${reg.url}${next}`);
        expect(res.headers.get('content-type')).toBe(OCI_INDEX);
        expect(res.headers.get('oci-filters-applied')).toBeNull();
        seen.push(...((await res.json()) as { manifests: typeof seen }).manifests);
        next = /^<([^>]+)>; rel="next"$/.exec(res.headers.get('link') ?? '')?.[1];
      }
      expect(seen.map((d) => d.digest).sort()).toEqual([sha256(sig), sha256(sbom)].sort());
      expect(seen.find((d) => d.digest === sha256(sig))?.artifactType).toBe(
        'application/vnd.dev.cosign.artifact.sig.v1+json',
      );
      expect(seen.find((d) => d.digest === sha256(sbom))).toMatchObject({
        artifactType: 'application/spdx+json',
        annotations: { k: 'v' },
      });

      const filtered = await fetch(
        `${reg.url}/v2/r/referrers/${subjectDigest}?artifactType=${encodeURIComponent('application/spdx+json')}`,
      );
      expect(filtered.headers.get('oci-filters-applied')).toBe('artifactType');
      expect(((await filtered.json()) as { manifests: { digest: string }[] }).manifests.map((d) => d.digest)).toEqual([
        sha256(sbom),
      ]);

      const none = await fetch(`${reg.url}/v2/r/referrers/${sha256(bytes(3))}`);
      expect(await none.json()).toEqual({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
    } finally {
      await reg.close();
    }
  });
});
