/** Registry credentials from Docker's config and the containers auth.json (lib/cli/docker-config.ts). */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CredentialHelperError,
  dockerCredentials,
  mayReceive,
  registryOfKey,
  TOKEN_USERNAME,
} from '../../lib/cli/docker-config.js';
import { installCredentialHelper } from '../support/credential-helper.js';

let work: string;
let n = 0;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'oci-import-docker-config-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** A fresh HOME (and DOCKER_CONFIG when asked) with these files. */
async function home(
  files: { docker?: unknown; dockerAt?: 'home' | 'DOCKER_CONFIG'; containers?: unknown; xdg?: unknown },
  extra: Record<string, string> = {},
) {
  const dir = join(work, `h${++n}`);
  const env: Record<string, string> = { HOME: dir, PATH: process.env.PATH ?? '', ...extra };
  const dockerDir = files.dockerAt === 'DOCKER_CONFIG' ? join(dir, 'dc') : join(dir, '.docker');
  if (files.dockerAt === 'DOCKER_CONFIG') env.DOCKER_CONFIG = dockerDir;
  await mkdir(dockerDir, { recursive: true });
  if (files.docker !== undefined)
    await writeFile(
      join(dockerDir, 'config.json'),
      typeof files.docker === 'string' ? files.docker : JSON.stringify(files.docker),
    );
  if (files.containers !== undefined) {
    env.REGISTRY_AUTH_FILE = join(dir, 'auth.json');
    await writeFile(env.REGISTRY_AUTH_FILE, JSON.stringify(files.containers));
  }
  if (files.xdg !== undefined) {
    env.XDG_RUNTIME_DIR = join(dir, 'run');
    await mkdir(join(env.XDG_RUNTIME_DIR, 'containers'), { recursive: true });
    await writeFile(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'), JSON.stringify(files.xdg));
  }
  return env;
}

describe('keys and bindings', () => {
  it("maps Docker Hub's keys to its registry, and strips schemes and paths", () => {
    for (const key of ['https://index.docker.io/v1/', 'docker.io', 'index.docker.io', 'registry-1.docker.io'])
      expect(registryOfKey(key)).toBe('registry-1.docker.io');
    expect(registryOfKey('https://Registry.Example:5000/v2/')).toBe('registry.example:5000');
    expect(registryOfKey('ghcr.io')).toBe('ghcr.io');
  });

  it('binds credentials to their registry (Docker Hub: and auth.docker.io), never another host or port', () => {
    expect(mayReceive('registry-1.docker.io', 'auth.docker.io')).toBe(true);
    expect(mayReceive('registry-1.docker.io', 'evil.example')).toBe(false);
    expect(mayReceive('ghcr.io', 'ghcr.io')).toBe(true);
    expect(mayReceive('ghcr.io', 'auth.docker.io')).toBe(false);
    expect(mayReceive('r.example:5000', 'r.example:5001')).toBe(false);
  });
});

describe('dockerCredentials', () => {
  it('auths.<host>.auth in ~/.docker/config.json; Docker Hub under https://index.docker.io/v1/', async () => {
    const env = await home({
      docker: {
        auths: {
          'r.example:5000': { auth: b64('me:pa:ss') },
          'https://index.docker.io/v1/': { auth: b64('hubuser:hubpw') },
        },
      },
    });
    expect(await dockerCredentials('r.example:5000', env)).toMatchObject({ username: 'me', password: 'pa:ss' });
    const hub = await dockerCredentials('docker.io', env);
    expect(hub).toMatchObject({ username: 'hubuser', password: 'hubpw' });
    expect(hub!.mayReceive!('auth.docker.io')).toBe(true);
    expect(hub!.mayReceive!('r.example:5000')).toBe(false);
    expect(await dockerCredentials('other.example', env)).toBeUndefined();
  });

  it("$DOCKER_CONFIG wins over ~/.docker; identitytoken becomes the token user's password (az acr login)", async () => {
    const env = await home({
      dockerAt: 'DOCKER_CONFIG',
      docker: { auths: { 'x.azurecr.io': { auth: '', identitytoken: 'refresh-token-1' } } },
    });
    await mkdir(join(env.HOME!, '.docker'), { recursive: true });
    await writeFile(
      join(env.HOME!, '.docker', 'config.json'),
      JSON.stringify({ auths: { 'x.azurecr.io': { auth: b64('wrong:wrong') } } }),
    );
    expect(await dockerCredentials('x.azurecr.io', env)).toMatchObject({
      username: TOKEN_USERNAME,
      password: 'refresh-token-1',
    });
  });

  it('credHelpers.<host> and credsStore run docker-credential-<name> get with the server on stdin', async () => {
    const bin = join(work, `bin${++n}`);
    const helper = await installCredentialHelper(bin, 'teststore', {
      'r.example:5000': { username: 'helped', secret: 'helper-pw' },
      'https://index.docker.io/v1/': { username: '<token>', secret: 'hub-identity' },
    });
    const env = await home(
      {
        docker: { credsStore: 'teststore', credHelpers: { 'h.example': 'teststore' }, auths: { 'r.example:5000': {} } },
      },
      { PATH: `${bin}:${process.env.PATH ?? ''}` },
    );
    expect(await dockerCredentials('r.example:5000', env)).toMatchObject({ username: 'helped', password: 'helper-pw' });
    expect(await dockerCredentials('docker.io', env)).toMatchObject({
      username: TOKEN_USERNAME,
      password: 'hub-identity',
    });
    expect(await dockerCredentials('h.example', env)).toBeUndefined(); // "credentials not found": none
    expect(await helper.asked()).toEqual(['r.example:5000', 'https://index.docker.io/v1/', 'h.example']);
  });

  it('a helper that is missing or fails is an error naming it', async () => {
    const bin = join(work, `bin${++n}`);
    await installCredentialHelper(bin, 'locked', {}, ['r.example']);
    const env = await home(
      { docker: { credHelpers: { 'r.example': 'locked', 'm.example': 'nosuchhelper' } } },
      { PATH: `${bin}:${process.env.PATH ?? ''}` },
    );
    const failed = await dockerCredentials('r.example', env).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(CredentialHelperError);
    expect((failed as Error).message).toMatch(
      /docker-credential-locked get failed for r\.example \(exit 3\): error: keychain is locked/,
    );
    await expect(dockerCredentials('m.example', env)).rejects.toThrow(
      /docker-credential-nosuchhelper .* is not on PATH/,
    );
  });

  it('then REGISTRY_AUTH_FILE, then $XDG_RUNTIME_DIR/containers/auth.json', async () => {
    const env = await home({
      docker: { auths: { 'd.example': { auth: b64('d:d') } } },
      containers: { auths: { 'c.example': { auth: b64('c:c') } } },
      xdg: { auths: { 'c.example': { auth: b64('x:x') }, 'x.example': { auth: b64('x:x') } } },
    });
    expect(await dockerCredentials('d.example', env)).toMatchObject({ username: 'd' });
    expect(await dockerCredentials('c.example', env)).toMatchObject({ username: 'c' });
    expect(await dockerCredentials('x.example', env)).toMatchObject({ username: 'x' });
  });

  it('a config that is not JSON is an error naming the file; no file is no credential', async () => {
    const env = await home({ docker: '{not json' });
    await expect(dockerCredentials('r.example', env)).rejects.toThrow(/config\.json is not valid JSON/);
    expect(await dockerCredentials('r.example', await home({}))).toBeUndefined();
  });
});
