/**
 * The CLI against REAL registries (CNCF distribution 2.8), every result checked by skopeo: the raw
 * manifest digest under each tag, and `skopeo copy --all` pulling every platform back out.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { buildHelmChart, buildImage, buildIndexOfN, type BuiltImage } from '../support/fixtures.js';
import { requireRegistryTools, startRegistry, type RunningRegistry } from '../support/registry.js';
import { copyAllToDir, inspectRaw, manifestDigest, pushOciLayout } from '../support/skopeo.js';

const hasTools = requireRegistryTools();

describe.skipIf(!hasTools)('import between real registries', () => {
  let src: RunningRegistry;
  let dst: RunningRegistry;
  let work: string;
  let multi: BuiltImage;
  const env = () => ({ INSECURE_REGISTRIES: `${src.host},${dst.host}`, CHUNK_SIZE: '64KiB' });

  beforeAll(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    work = await mkdtemp(join(tmpdir(), 'oci-import-it-'));
    // 3 platforms × 3 layers (one shared) of 200 KB: several 64 KiB chunks per layer.
    multi = await buildImage({
      dir: join(work, 'multi'),
      seed: 'multi',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
        { os: 'linux', architecture: 'ppc64le' },
      ],
      layersPerPlatform: 3,
      layerSize: 200_000,
    });
    await pushOciLayout(multi.layoutDir, `${src.host}/team/multi:1.0`);
  });

  afterAll(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('imports a 3-platform OCI index under two tags, byte for byte', async () => {
    const run = await runCli(
      [
        'import',
        '--source',
        `${src.host}/team/multi:1.0`,
        '--target',
        dst.host,
        '--image',
        'mirror/multi:1.0',
        '--image',
        'mirror/multi:stable',
      ],
      env(),
    );
    expect(run.stderr).not.toContain('failed');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(multi.digest);
    expect(await manifestDigest(`${dst.host}/mirror/multi:1.0`)).toBe(multi.digest);
    expect(await manifestDigest(`${dst.host}/mirror/multi:stable`)).toBe(multi.digest);
    expect((await inspectRaw(`${dst.host}/mirror/multi:1.0`)).equals(multi.manifestBytes)).toBe(true);
    for (const child of multi.manifests) {
      expect(await manifestDigest(`${dst.host}/mirror/multi@${child.digest}`)).toBe(child.digest);
    }
    await copyAllToDir(`${dst.host}/mirror/multi:stable`, join(work, 'out-multi'));
  });

  it('imports by digest into a repository with no tag', async () => {
    const run = await runCli(
      [
        'import',
        '--source',
        `${src.host}/team/multi@${multi.digest}`,
        '--target',
        dst.host,
        '--repository',
        'bydigest/multi',
      ],
      env(),
    );
    expect(run.code, run.stderr).toBe(0);
    expect(await manifestDigest(`${dst.host}/bydigest/multi@${multi.digest}`)).toBe(multi.digest);
    const tags = (await fetch(`http://${dst.host}/v2/bydigest/multi/tags/list`).then((r) => r.json())) as {
      tags: string[] | null;
    };
    expect(tags.tags ?? []).toEqual([]);
    await copyAllToDir(`${dst.host}/bydigest/multi@${multi.digest}`, join(work, 'out-bydigest'));
  });

  it('without --image keeps the source repository and tag', async () => {
    const run = await runCli(
      ['import', '--source', `${src.host}/team/multi:1.0`, '--target', dst.host, '--json'],
      env(),
    );
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).tagged).toEqual(['team/multi:1.0']);
    expect(await manifestDigest(`${dst.host}/team/multi:1.0`)).toBe(multi.digest);
  });

  /** The 3-platform index imported again under `image`, into the repository that holds it already: the --json result. */
  const importAgain = async (image: string) => {
    const run = await runCli(
      ['import', '--source', `${src.host}/team/multi:1.0`, '--target', dst.host, '--image', image, '--json'],
      env(),
    );
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { blobs: { outcome: string }[]; tagged: string[]; unchanged: string[] };
    expect(out.blobs.length).toBe(multi.blobs.length);
    expect(out.blobs.every((b) => b.outcome === 'existed')).toBe(true);
    return out;
  };

  it('re-importing an unchanged image copies no blob bytes', async () => {
    expect((await importAgain('mirror/multi:1.0')).unchanged).toEqual(['mirror/multi:1.0']);
  });

  it('a new tag in a repository that holds the blobs: distribution says so to the POST that would open each upload', async () => {
    // a new tag: the copy asks for each small blob with its upload's POST (a mount from the repository itself), not a
    // HEAD first; distribution answers 201 for a blob the repository holds, and nothing is uploaded
    expect((await importAgain('mirror/multi:again')).tagged).toEqual(['mirror/multi:again']);
    expect(await manifestDigest(`${dst.host}/mirror/multi:again`)).toBe(multi.digest);
  });

  it('imports a Docker manifest list with gzip layers', async () => {
    const list = await buildImage({
      dir: join(work, 'docker'),
      seed: 'docker',
      docker: true,
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm', variant: 'v7' },
      ],
      layerSize: 100_000,
    });
    await pushOciLayout(list.layoutDir, `${src.host}/docker/list:v1`);
    const run = await runCli(
      ['import', '--source', `${src.host}/docker/list:v1`, '--target', dst.host, '--image', 'docker/list:v1'],
      env(),
    );
    expect(run.code, run.stderr).toBe(0);
    expect(await manifestDigest(`${dst.host}/docker/list:v1`)).toBe(list.digest);
    await copyAllToDir(`${dst.host}/docker/list:v1`, join(work, 'out-docker'));
  });

  it('imports a Helm chart (OCI artifact) unchanged', async () => {
    const chart = await buildHelmChart({ dir: join(work, 'chart'), name: 'demo', version: '0.3.1' });
    await pushOciLayout(chart.layoutDir, `${src.host}/charts/demo:0.3.1`);
    const run = await runCli(
      ['import', '--source', `${src.host}/charts/demo:0.3.1`, '--target', dst.host, '--image', 'charts/demo:0.3.1'],
      env(),
    );
    expect(run.code, run.stderr).toBe(0);
    expect(await manifestDigest(`${dst.host}/charts/demo:0.3.1`)).toBe(chart.digest);
    const raw = JSON.parse((await inspectRaw(`${dst.host}/charts/demo:0.3.1`)).toString()) as {
      config: { mediaType: string };
    };
    expect(raw.config.mediaType).toBe('application/vnd.cncf.helm.config.v1+json');
  });

  it('refuses an index of 60 manifests naming the limit 50, and imports one of 50', async () => {
    const sixty = await buildIndexOfN({ dir: join(work, 'sixty'), count: 60, seed: 'sixty' });
    const fifty = await buildIndexOfN({ dir: join(work, 'fifty'), count: 50, seed: 'fifty' });
    await pushOciLayout(sixty.layoutDir, `${src.host}/many/sixty:1`);
    await pushOciLayout(fifty.layoutDir, `${src.host}/many/fifty:1`);
    const refused = await runCli(['import', '--source', `${src.host}/many/sixty:1`, '--target', dst.host], env());
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('TOO_MANY_MANIFESTS');
    expect(refused.stderr).toMatch(/60 manifests.*maximum.* 50/);
    expect(await fetch(`http://${dst.host}/v2/many/sixty/manifests/1`, { method: 'HEAD' }).then((r) => r.status)).toBe(
      404,
    );
    const ok = await runCli(['import', '--source', `${src.host}/many/fifty:1`, '--target', dst.host], env());
    expect(ok.code, ok.stderr).toBe(0);
    expect(await manifestDigest(`${dst.host}/many/fifty:1`)).toBe(fifty.digest);
  });

  it('does not move an existing tag without --force, and does with it', async () => {
    const other = await buildImage({ dir: join(work, 'other'), seed: 'other', layerSize: 5000 });
    await pushOciLayout(other.layoutDir, `${src.host}/team/other:1.0`);
    await runCli(
      ['import', '--source', `${src.host}/team/other:1.0`, '--target', dst.host, '--image', 'taken/app:1.0'],
      env(),
    );
    expect(await manifestDigest(`${dst.host}/taken/app:1.0`)).toBe(other.digest);

    const refused = await runCli(
      ['import', '--source', `${src.host}/team/multi:1.0`, '--target', dst.host, '--image', 'taken/app:1.0'],
      env(),
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('TAG_EXISTS');
    expect(refused.stderr).toContain('taken/app:1.0');
    expect(await manifestDigest(`${dst.host}/taken/app:1.0`)).toBe(other.digest);

    const forced = await runCli(
      ['import', '--source', `${src.host}/team/multi:1.0`, '--target', dst.host, '--image', 'taken/app:1.0', '--force'],
      env(),
    );
    expect(forced.code, forced.stderr).toBe(0);
    expect(await manifestDigest(`${dst.host}/taken/app:1.0`)).toBe(multi.digest);
  });

  it('imports one platform of an index: the tag points at that platform manifest', async () => {
    const run = await runCli(
      [
        'import',
        '--source',
        `${src.host}/team/multi:1.0`,
        '--target',
        dst.host,
        '--image',
        'arm/multi:1.0',
        '--platform',
        'linux/arm64',
      ],
      env(),
    );
    expect(run.code, run.stderr).toBe(0);
    const arm = multi.manifests.find((m) => m.platform?.architecture === 'arm64')!;
    expect(await manifestDigest(`${dst.host}/arm/multi:1.0`)).toBe(arm.digest);
  });

  it('mounts blobs within the same registry instead of copying them', async () => {
    const run = await runCli(
      [
        'import',
        '--source',
        `${dst.host}/mirror/multi:1.0`,
        '--target',
        dst.host,
        '--image',
        'mounted/multi:1.0',
        '--json',
      ],
      env(),
    );
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { blobs: { outcome: string }[] };
    expect(out.blobs.every((b) => b.outcome === 'mounted')).toBe(true);
    expect(await manifestDigest(`${dst.host}/mounted/multi:1.0`)).toBe(multi.digest);
  });

  it('says clearly when the source does not exist', async () => {
    const run = await runCli(['import', '--source', `${src.host}/team/missing:1.0`, '--target', dst.host], env());
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('SOURCE_NOT_FOUND');
    expect(run.stderr).toContain('team/missing:1.0');
  });
});

describe.skipIf(!hasTools)('import with authentication', () => {
  let basic: RunningRegistry;
  let token: RunningRegistry;
  let work: string;

  beforeAll(async () => {
    [basic, token] = await Promise.all([startRegistry({ auth: 'htpasswd' }), startRegistry({ auth: 'token' })]);
    work = await mkdtemp(join(tmpdir(), 'oci-import-auth-'));
  });
  afterAll(async () => {
    await Promise.all([basic?.stop(), token?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('imports from a basic-auth source into a token-auth target', async () => {
    const img = await buildImage({
      dir: join(work, 'img'),
      seed: 'auth',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
      layerSize: 150_000,
    });
    const basicCreds = { username: basic.username!, password: basic.password! };
    const tokenCreds = { username: token.username!, password: token.password! };
    await pushOciLayout(img.layoutDir, `${basic.host}/private/app:2.0`, basicCreds);
    const run = await runCli(
      [
        'import',
        '--source',
        `${basic.host}/private/app:2.0`,
        '--target',
        token.host,
        '--image',
        'secure/app:2.0',
        '--username',
        basicCreds.username,
        '--password',
        basicCreds.password,
        '--target-username',
        tokenCreds.username,
        '--target-password',
        tokenCreds.password,
      ],
      { INSECURE_REGISTRIES: `${basic.host},${token.host}`, CHUNK_SIZE: '64KiB' },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout + run.stderr).not.toContain(basicCreds.password);
    expect(run.stdout + run.stderr).not.toContain(tokenCreds.password);
    expect(await manifestDigest(`${token.host}/secure/app:2.0`, tokenCreds)).toBe(img.digest);
    await copyAllToDir(`${token.host}/secure/app:2.0`, join(work, 'out'), tokenCreds);
    // Tokens are cached per scope set: far fewer token requests than registry requests.
    const pushScopes = token.tokenRequests.filter((r) =>
      r.scope.some((s) => s.includes('secure/app') && s.includes('push')),
    );
    expect(pushScopes.length).toBeGreaterThan(0);
    expect(pushScopes.length).toBeLessThan(5);
  });

  it('imports with the default streamed uploads (no CHUNK_SIZE: one PATCH per blob, fed by 4 MiB ranged GETs), basic-auth source, token-auth target', async () => {
    // 2 platforms with 10 MB layers: every layer is several 4 MiB ranged GETs streamed into one PATCH
    const img = await buildImage({
      dir: join(work, 'streamed'),
      seed: 'streamed',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
      layerSize: 10_000_000,
    });
    const basicCreds = { username: basic.username!, password: basic.password! };
    const tokenCreds = { username: token.username!, password: token.password! };
    await pushOciLayout(img.layoutDir, `${basic.host}/private/streamed:1`, basicCreds);
    const run = await runCli(
      [
        'import',
        '--source',
        `${basic.host}/private/streamed:1`,
        '--target',
        token.host,
        '--image',
        'secure/streamed:1',
        '--username',
        basicCreds.username,
        '--password',
        basicCreds.password,
        '--target-username',
        tokenCreds.username,
        '--target-password',
        tokenCreds.password,
        '--json',
      ],
      { INSECURE_REGISTRIES: `${basic.host},${token.host}` },
    );
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as { digest: string; blobs: { size: number; outcome: string }[] };
    expect(result.digest).toBe(img.digest);
    expect(result.blobs.filter((b) => b.size >= 10_000_000).every((b) => b.outcome === 'copied')).toBe(true);
    expect(await manifestDigest(`${token.host}/secure/streamed:1`, tokenCreds)).toBe(img.digest);
    await copyAllToDir(`${token.host}/secure/streamed:1`, join(work, 'out-streamed'), tokenCreds);
  });

  it('the installed command takes the password from a pipe (echo "$PW" | oci-import import … --password-stdin)', async () => {
    const img = await buildImage({
      dir: join(work, 'piped'),
      seed: 'piped',
      platforms: [{ os: 'linux', architecture: 'amd64' }],
      layerSize: 50_000,
    });
    const basicCreds = { username: basic.username!, password: basic.password! };
    const tokenCreds = { username: token.username!, password: token.password! };
    await pushOciLayout(img.layoutDir, `${basic.host}/private/piped:1`, basicCreds);
    // the built command (npm ci builds it through `prepare`), through a real shell pipe; no password in argv
    // (spawned asynchronously: the token server runs in this process and must keep answering)
    const child = spawn(
      'sh',
      [
        '-c',
        `echo "$PW" | node bin/oci-import.js import --source ${basic.host}/private/piped:1 --target ${token.host} --image secure/piped:1 --username "$USER_NAME" --password-stdin --target-username "$TARGET_USER"`,
      ],
      {
        env: {
          ...process.env,
          PW: basicCreds.password,
          USER_NAME: basicCreds.username,
          TARGET_USER: tokenCreds.username,
          OCI_IMPORT_TARGET_PASSWORD: tokenCreds.password,
          INSECURE_REGISTRIES: `${basic.host},${token.host}`,
        },
      },
    );
    const run = { stdout: '', stderr: '', status: -1 };
    child.stdout.on('data', (c: Buffer) => (run.stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (run.stderr += c.toString()));
    run.status = await new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).not.toContain('warning');
    expect(run.stdout + run.stderr).not.toContain(basicCreds.password);
    expect(await manifestDigest(`${token.host}/secure/piped:1`, tokenCreds)).toBe(img.digest);
  });

  it('fails with a clear message and no secret when the password is wrong', async () => {
    const run = await runCli(
      [
        'import',
        '--source',
        `${basic.host}/private/app:2.0`,
        '--target',
        token.host,
        '--username',
        basic.username!,
        '--password',
        'wrong-password-123',
      ],
      { INSECURE_REGISTRIES: `${basic.host},${token.host}` },
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/401|UNAUTHORIZED|refused/);
    expect(run.stderr).not.toContain('wrong-password-123');
  });

  it('fails with a clear message when the token registry gets no credentials', async () => {
    const run = await runCli(
      [
        'import',
        '--source',
        `${basic.host}/private/app:2.0`,
        '--target',
        token.host,
        '--username',
        basic.username!,
        '--password',
        basic.password!,
      ],
      { INSECURE_REGISTRIES: `${basic.host},${token.host}` },
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('AUTH_FAILED');
    expect(run.stderr).toContain(token.host);
    expect(run.stderr).not.toContain(basic.password!);
  });
});
