/**
 * Self-test of the real-registry harness (test/support): registries for every auth kind, fixtures,
 * skopeo wrappers. If this fails, integration test failures elsewhere are not about oci-import.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MT, buildHelmChart, buildImage, buildIndexOfN, sha256, type BuiltImage } from '../support/fixtures.js';
import { startRegistry, requireRegistryTools, type RegistryAuth, type RunningRegistry } from '../support/registry.js';
import { copyAllToDir, inspectRaw, manifestDigest, pushOciLayout, type Creds } from '../support/skopeo.js';

const hasTools = requireRegistryTools();

const PLATFORMS = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
  { os: 'linux', architecture: 'arm', variant: 'v7' },
];

/** GET without keep-alive; returns status and headers. */
function get(url: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function blobNames(layoutDir: string): Promise<Set<string>> {
  return new Set((await readdir(join(layoutDir, 'blobs', 'sha256'))).map((h) => `sha256:${h}`));
}

describe('fixtures (no tools needed)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oci-import-fixtures-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is deterministic and shares a layer between platforms', async () => {
    const a = await buildImage({ dir: join(dir, 'a'), platforms: PLATFORMS, seed: 's1' });
    const b = await buildImage({ dir: join(dir, 'b'), platforms: PLATFORMS, seed: 's1' });
    const c = await buildImage({ dir: join(dir, 'c'), platforms: PLATFORMS, seed: 's2' });
    expect(a.digest).toBe(b.digest);
    expect(a.digest).not.toBe(c.digest);
    expect(a.mediaType).toBe(MT.ociIndex);
    expect(sha256(a.manifestBytes)).toBe(a.digest);
    expect(a.manifests).toHaveLength(3);
    // 1 shared layer + 3 unique layers + 3 configs
    expect(a.blobs).toHaveLength(7);
    const layerSets = await Promise.all(
      a.manifests.map(async (m) => {
        const mf = JSON.parse(await readFile(join(a.layoutDir, 'blobs/sha256', m.digest.slice(7)), 'utf8')) as {
          layers: { digest: string }[];
        };
        return mf.layers.map((l) => l.digest);
      }),
    );
    expect(new Set(layerSets.map((l) => l[0])).size).toBe(1);
    // every blob file is named by its digest
    for (const name of await blobNames(a.layoutDir)) {
      expect(sha256(await readFile(join(a.layoutDir, 'blobs/sha256', name.slice(7))))).toBe(name);
    }
  });

  it('builds Docker lists, N-manifest indexes and Helm charts', async () => {
    const d = await buildImage({ dir: join(dir, 'd'), platforms: PLATFORMS, docker: true });
    expect(d.mediaType).toBe(MT.dockerList);
    expect(d.manifests.every((m) => m.mediaType === MT.dockerManifest)).toBe(true);
    const n = await buildIndexOfN({ dir: join(dir, 'n'), count: 10 });
    expect(new Set(n.manifests.map((m) => m.digest)).size).toBe(10);
    expect(n.blobs).toHaveLength(11); // 1 shared layer + 10 configs
    const h = await buildHelmChart({ dir: join(dir, 'h'), name: 'x', version: '1.2.3' });
    expect(h.tag).toBe('1.2.3');
    expect(JSON.parse(h.manifestBytes.toString()).config.mediaType).toBe(MT.helmConfig);
  });
});

describe.skipIf(!hasTools)('real registry harness', () => {
  let work: string;
  let image: BuiltImage;
  let helm: BuiltImage;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'oci-import-harness-'));
    image = await buildImage({ dir: join(work, 'image'), platforms: PLATFORMS, layerSize: 2048, seed: 'harness' });
    helm = await buildHelmChart({ dir: join(work, 'helm'), name: 'harness-chart', version: '0.3.0' });
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  describe.each<RegistryAuth>(['none', 'htpasswd', 'token'])('auth=%s', (auth) => {
    let reg: RunningRegistry;
    let creds: Creds | undefined;

    beforeAll(async () => {
      reg = await startRegistry({ auth });
      creds = reg.username !== undefined ? { username: reg.username, password: reg.password! } : undefined;
    });
    afterAll(async () => {
      await reg?.stop();
    });

    it('serves /v2/ (anonymous: 200 without auth, 401 with a challenge otherwise)', async () => {
      const res = await get(`http://${reg.host}/v2/`);
      if (auth === 'none') {
        expect(res.status).toBe(200);
      } else {
        expect(res.status).toBe(401);
        const challenge = String(res.headers['www-authenticate']);
        if (auth === 'htpasswd') expect(challenge).toMatch(/^Basic /);
        else expect(challenge).toBe(`Bearer realm="${reg.tokenRealm}",service="oci-import-test-registry"`);
      }
    });

    it('pushes a 3-platform OCI layout with skopeo, digests preserved, and pulls it all back', async () => {
      const ref = `${reg.host}/harness/multi:latest`;
      await pushOciLayout(image.layoutDir, ref, creds);
      expect(await manifestDigest(ref, creds)).toBe(image.digest);
      expect((await inspectRaw(`${reg.host}/harness/multi@${image.digest}`, creds)).equals(image.manifestBytes)).toBe(
        true,
      );

      const out = join(work, `pulled-${auth}`);
      await copyAllToDir(ref, out, creds);
      const pulled = await blobNames(out);
      for (const b of image.blobs) expect(pulled.has(b.digest)).toBe(true);
      for (const m of image.manifests) expect(pulled.has(m.digest)).toBe(true);
      expect(pulled.has(image.digest)).toBe(true);
    });

    it('pushes a Helm chart artifact with skopeo, digest preserved', async () => {
      const ref = `${reg.host}/harness/charts/${'harness-chart'}:${helm.tag}`;
      await pushOciLayout(helm.layoutDir, ref, creds);
      expect(await manifestDigest(ref, creds)).toBe(helm.digest);
    });

    if (auth !== 'none') {
      it('refuses anonymous pulls', async () => {
        await expect(inspectRaw(`${reg.host}/harness/multi:latest`)).rejects.toThrow(
          /unauthorized|authentication required|401/i,
        );
      });

      it('never leaks the password into errors', async () => {
        const err = await inspectRaw(`${reg.host}/harness/does-not-exist:latest`, creds).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(Error);
        expect((err as Error).message).not.toContain(reg.password!);
        expect((err as Error).message).toContain('--creds tester:***');
      });
    }

    if (auth === 'token') {
      it('logs token requests, all authenticated, with repository scopes', async () => {
        expect(reg.tokenRequests.length).toBeGreaterThan(0);
        const granted = reg.tokenRequests.filter((r) => r.status === 200);
        expect(granted.length).toBeGreaterThan(0);
        for (const r of granted) expect(r.authorization).toMatch(/^Basic /);
        expect(granted.flatMap((r) => r.scope)).toContain('repository:harness/multi:pull,push');
        // the anonymous attempt from 'refuses anonymous pulls' was refused by the token server
        expect(reg.tokenRequests.some((r) => r.status === 401 && r.authorization === undefined)).toBe(true);
      });

      it('token server: anonymous and wrong password get 401, OAuth2 POST works', async () => {
        const url = `${reg.tokenRealm}?service=oci-import-test-registry&scope=repository:a/b:pull`;
        expect((await fetch(url)).status).toBe(401);
        const bad = 'Basic ' + Buffer.from(`${reg.username}:wrong`).toString('base64');
        expect((await fetch(url, { headers: { authorization: bad } })).status).toBe(401);

        const form = new URLSearchParams({
          grant_type: 'password',
          username: reg.username!,
          password: reg.password!,
          service: 'oci-import-test-registry',
          scope: 'repository:harness/multi:pull repository:harness/other:pull,push',
          client_id: 'oci-import-test',
        });
        const res = await fetch(reg.tokenRealm!, { method: 'POST', body: form });
        expect(res.status).toBe(200);
        const body = (await res.json()) as {
          token: string;
          access_token: string;
          expires_in: number;
          issued_at: string;
        };
        expect(body.token).toBe(body.access_token);
        expect(body.expires_in).toBe(300);
        const claims = JSON.parse(Buffer.from(body.token.split('.')[1]!, 'base64url').toString()) as {
          aud: unknown;
          access: { name: string; actions: string[] }[];
        };
        expect(claims.aud).toBe('oci-import-test-registry');
        expect(claims.access.map((a) => a.name)).toEqual(['harness/multi', 'harness/other']);
        const manifest = await fetch(`http://${reg.host}/v2/harness/multi/manifests/latest`, {
          headers: { authorization: `Bearer ${body.token}`, accept: MT.ociIndex },
        });
        expect(manifest.status).toBe(200);
        expect(Buffer.from(await manifest.arrayBuffer()).equals(image.manifestBytes)).toBe(true);
      });
    }

    if (auth === 'none') {
      it('round-trips a Docker manifest list and a 12-manifest index', async () => {
        const docker = await buildImage({ dir: join(work, 'docker'), platforms: PLATFORMS, docker: true });
        await pushOciLayout(docker.layoutDir, `${reg.host}/harness/docker:latest`);
        expect(await manifestDigest(`${reg.host}/harness/docker:latest`)).toBe(docker.digest);
        const many = await buildIndexOfN({ dir: join(work, 'many'), count: 12 });
        await pushOciLayout(many.layoutDir, `${reg.host}/harness/many:latest`);
        expect(await manifestDigest(`${reg.host}/harness/many:latest`)).toBe(many.digest);
      });
    }
  });

  it('stop() kills the registry and removes its temp dir', async () => {
    const reg = await startRegistry();
    await reg.stop();
    await expect(get(`http://${reg.host}/v2/`)).rejects.toThrow();
    await expect(readdir(reg.dir)).rejects.toThrow(/ENOENT/);
    await reg.stop(); // idempotent
  });
});
