/**
 * The installed command (`node bin/oci-import.js`, a child process) with no credential flag, reading what
 * `docker login` and the credential helpers keep: Docker `auths` for a basic-auth source, a credential helper
 * (`docker-credential-<name>` on PATH) for a basic-auth target, both real docker-registry servers with htpasswd;
 * results checked with skopeo. A temporary HOME and DOCKER_CONFIG: the user's own files are never read.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBin } from '../support/cli.js';
import { installCredentialHelper } from '../support/credential-helper.js';
import { buildImage, type BuiltImage } from '../support/fixtures.js';
import { requireRegistryTools, startRegistry, type RunningRegistry } from '../support/registry.js';
import { manifestDigest, pushOciLayout } from '../support/skopeo.js';

const hasTools = requireRegistryTools();

describe.skipIf(!hasTools)('oci-import with Docker credentials (installed command)', () => {
  let work: string;
  let src: RunningRegistry;
  let dst: RunningRegistry;
  let plain: RunningRegistry;
  let image: BuiltImage;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'oci-import-cli-docker-'));
    [src, dst, plain] = await Promise.all([
      startRegistry({ auth: 'htpasswd' }),
      startRegistry({ auth: 'htpasswd' }),
      startRegistry(),
    ]);
    image = await buildImage({
      dir: join(work, 'image'),
      seed: 'docker-config',
      platforms: [{ os: 'linux', architecture: 'amd64' }],
      layerSize: 30_000,
    });
    await pushOciLayout(image.layoutDir, `${src.host}/team/app:1`, {
      username: src.username!,
      password: src.password!,
    });
    await pushOciLayout(image.layoutDir, `${plain.host}/team/app:1`);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([src?.stop(), dst?.stop(), plain?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** A HOME of its own with this DOCKER_CONFIG/config.json. */
  async function dockerConfig(name: string, config: unknown): Promise<Record<string, string>> {
    const home = join(work, name);
    await mkdir(join(home, 'docker'), { recursive: true });
    await writeFile(join(home, 'docker', 'config.json'), JSON.stringify(config));
    return {
      HOME: home,
      DOCKER_CONFIG: join(home, 'docker'),
      INSECURE_REGISTRIES: [src.host, dst.host, plain.host].join(','),
    };
  }

  it('auths.<host>.auth signs in to a basic-auth source; the password is never printed', async () => {
    const env = await dockerConfig('auths', {
      auths: { [src.host]: { auth: Buffer.from(`${src.username!}:${src.password!}`).toString('base64') } },
    });
    const run = await runBin(
      ['import', '--source', `${src.host}/team/app:1`, '--target', plain.host, '--image', 'from-auths/app:1'],
      env,
    );
    expect(run.code, run.stderr).toBe(0);
    expect(await manifestDigest(`${plain.host}/from-auths/app:1`)).toBe(image.digest);
    expect(run.stdout + run.stderr).not.toContain(src.password!);
  });

  it('a credential helper (credHelpers) signs in to a basic-auth target', async () => {
    const bin = join(work, 'helper-bin');
    const helper = await installCredentialHelper(bin, 'ocitest', {
      [dst.host]: { username: dst.username!, secret: dst.password! },
    });
    const env = {
      ...(await dockerConfig('helper', { credHelpers: { [dst.host]: 'ocitest' } })),
      PATH: `${bin}:${process.env.PATH ?? ''}`,
    };
    const run = await runBin(
      ['import', '--source', `${plain.host}/team/app:1`, '--target', dst.host, '--image', 'from-helper/app:1'],
      env,
    );
    expect(run.code, run.stderr).toBe(0);
    expect(
      await manifestDigest(`${dst.host}/from-helper/app:1`, { username: dst.username!, password: dst.password! }),
    ).toBe(image.digest);
    expect(await helper.asked()).toContain(dst.host);
  });

  it('a helper that is missing: exit 1 naming it', async () => {
    const env = await dockerConfig('missing', { credsStore: 'nosuchstore' });
    const run = await runBin(
      ['import', '--source', `${plain.host}/team/app:1`, '--target', dst.host, '--image', 'x/app:1'],
      env,
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('CREDENTIAL_HELPER_FAILED');
    expect(run.stderr).toContain('docker-credential-nosuchstore');
  });

  it('without credentials anywhere, the basic-auth target refuses as before', async () => {
    const env = await dockerConfig('none', { auths: {} });
    const run = await runBin(
      ['import', '--source', `${plain.host}/team/app:1`, '--target', dst.host, '--image', 'y/app:1'],
      env,
    );
    expect(run.code).toBe(1);
  });
});
