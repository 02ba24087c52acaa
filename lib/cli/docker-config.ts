/**
 * Registry credentials where every container tool keeps them, for the CLI when no flag names a credential:
 *
 * 1. Docker's config: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json` — `credHelpers.<host>` (run
 *    `docker-credential-<name> get` with the server on stdin, as Docker does), else `credsStore` (the same, for every
 *    host), else `auths.<host>.auth` (base64 `user:password`) or `auths.<host>.identitytoken`;
 * 2. the containers `auth.json` of skopeo, podman and buildah: `REGISTRY_AUTH_FILE`, then
 *    `$XDG_RUNTIME_DIR/containers/auth.json` (the same `auths` format).
 *
 * Docker Hub's key is `https://index.docker.io/v1/` (also `docker.io`, `index.docker.io`, `registry-1.docker.io`).
 * A helper that is missing or fails is an error naming it; a helper answering "credentials not found" is no
 * credential. What is found is bound to its registry: sent to that `host[:port]` only (Docker Hub: also its token
 * service, auth.docker.io), never to a token realm elsewhere.
 */
// Read synchronously, as Docker's own CLI reads it: a small local file, read before any request goes out. An
// asynchronous read starts libuv's thread pool (four threads, joined again at exit) and waits a turn of the event loop
// per system call; node:fs/promises would also load its own modules (about 1 ms and 0.7 MB).
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { OciImportError } from '../errors.js';
import type { BoundCredentials } from '../oci/auth.js';
import { DOCKER_HUB_REGISTRY, normalizeRegistry } from '../oci/reference.js';

type Env = Record<string, string | undefined>;

/** Docker's key for Docker Hub, in `auths` and for credential helpers. */
export const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';
/** The user name of an identity (refresh) token, as ACR's `docker login` takes it. */
export const TOKEN_USERNAME = '00000000-0000-0000-0000-000000000000';
/** Hosts Docker Hub credentials may go to: the registry and its token service. */
const HUB_HOSTS = new Set([DOCKER_HUB_REGISTRY, 'docker.io', 'index.docker.io', 'auth.docker.io']);
const HELPER_TIMEOUT_MS = 30_000;

export class CredentialHelperError extends OciImportError {
  override name = 'CredentialHelperError';
  constructor(message: string) {
    super('CREDENTIAL_HELPER_FAILED', message, { side: 'request' });
  }
}

interface AuthEntry {
  readonly auth?: string;
  readonly username?: string;
  readonly password?: string;
  readonly identitytoken?: string;
}

interface AuthFile {
  readonly auths?: Record<string, AuthEntry>;
  readonly credHelpers?: Record<string, string>;
  readonly credsStore?: string;
}

/** The registry a config key names: `https://index.docker.io/v1/` → registry-1.docker.io, `host:5000/` → host:5000. */
export function registryOfKey(key: string): string {
  const bare = key
    .trim()
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '');
  return normalizeRegistry(bare);
}

/** Whether credentials of `registry` may be sent to `hostPort`. */
export function mayReceive(registry: string, hostPort: string): boolean {
  const target = normalizeRegistry(hostPort);
  return registry === DOCKER_HUB_REGISTRY ? HUB_HOSTS.has(target) : target === registry;
}

async function readAuthFile(path: string): Promise<AuthFile | undefined> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR')
      return undefined;
    throw new CredentialHelperError(`${path} could not be read: ${(err as Error).message}`);
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    return parsed && typeof parsed === 'object' ? (parsed as AuthFile) : undefined;
  } catch {
    throw new CredentialHelperError(
      `${path} is not valid JSON: fix it or point DOCKER_CONFIG / REGISTRY_AUTH_FILE elsewhere`,
    );
  }
}

function bind(registry: string, username: string, password: string, label: string): BoundCredentials {
  return { username, password, label, mayReceive: (hostPort) => mayReceive(registry, hostPort) };
}

/** An `auths` entry as credentials: `auth` (base64 user:password), `username`/`password`, or `identitytoken`. */
function fromEntry(registry: string, entry: AuthEntry, file: string): BoundCredentials | undefined {
  let username = typeof entry.username === 'string' ? entry.username : undefined;
  let password = typeof entry.password === 'string' ? entry.password : undefined;
  if (typeof entry.auth === 'string' && entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0)
      throw new CredentialHelperError(
        `${file}: auths entry of ${registry} has an "auth" that is not base64 of user:password`,
      );
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  if (typeof entry.identitytoken === 'string' && entry.identitytoken) {
    return bind(
      registry,
      username || TOKEN_USERNAME,
      entry.identitytoken,
      `the identity token for ${registry} in ${file}`,
    );
  }
  return username && password
    ? bind(registry, username, password, `the credentials for ${registry} in ${file}`)
    : undefined;
}

function entryFor(file: AuthFile, registry: string): AuthEntry | undefined {
  const found = Object.entries(file.auths ?? {}).find(([key]) => registryOfKey(key) === registry);
  return found && found[1] && typeof found[1] === 'object' ? found[1] : undefined;
}

function helperFor(file: AuthFile, registry: string): string | undefined {
  const named = Object.entries(file.credHelpers ?? {}).find(([key]) => registryOfKey(key) === registry)?.[1];
  return typeof named === 'string' && named
    ? named
    : typeof file.credsStore === 'string' && file.credsStore
      ? file.credsStore
      : undefined;
}

/** `docker-credential-<helper> get` for `registry`: the credentials, undefined when it has none, or an error naming it. */
export async function runHelper(
  helper: string,
  registry: string,
  env: Env,
  source: string,
): Promise<BoundCredentials | undefined> {
  const command = `docker-credential-${helper}`;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(helper))
    throw new CredentialHelperError(`${source} names the credential helper "${helper}", which is not a helper name`);
  const server = registry === DOCKER_HUB_REGISTRY ? DOCKER_HUB_KEY : registry;
  // loaded here, not at start-up: a run without a credential helper never spawns one
  const { spawn } = await import('node:child_process');
  const out = await new Promise<{ code: number | null; stdout: string; stderr: string; error?: NodeJS.ErrnoException }>(
    (resolve) => {
      const child = spawn(command, ['get'], { env: env as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] });
      // (spawn's own `timeout` keeps its timer after a helper that never started: this one ends with the helper)
      const timer = setTimeout(() => child.kill('SIGKILL'), HELPER_TIMEOUT_MS);
      timer.unref();
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString('utf8');
      });
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString('utf8');
      });
      child.on('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        resolve({ code: null, stdout, stderr, error });
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
      child.stdin.on('error', () => undefined);
      child.stdin.end(server);
    },
  );
  if (out.error) {
    const why = out.error.code === 'ENOENT' ? 'is not on PATH' : `could not run (${out.error.message})`;
    throw new CredentialHelperError(
      `${command} (the credential helper ${source} names for ${registry}) ${why}: install it, or remove it from that file`,
    );
  }
  if (out.code !== 0) {
    if (/credentials not found/i.test(out.stdout + out.stderr)) return undefined;
    const said = (out.stderr.trim() || out.stdout.trim()).split('\n')[0]?.slice(0, 300) ?? '';
    throw new CredentialHelperError(
      `${command} get failed for ${registry} (exit ${String(out.code)})${said ? `: ${said}` : ''}`,
    );
  }
  let answer: { Username?: unknown; Secret?: unknown };
  try {
    answer = JSON.parse(out.stdout) as typeof answer;
  } catch {
    throw new CredentialHelperError(`${command} get answered something other than JSON for ${registry}`);
  }
  if (typeof answer.Secret !== 'string' || !answer.Secret) return undefined;
  const user = typeof answer.Username === 'string' ? answer.Username : '';
  // Docker's convention: the user name "<token>" marks an identity token
  return bind(
    registry,
    user === '<token>' || !user ? TOKEN_USERNAME : user,
    answer.Secret,
    `the credentials ${command} holds for ${registry}`,
  );
}

/** The files to read, in order: Docker's config, then the containers auth files. */
export function authFiles(env: Env, home = env.HOME || homedir()): { docker: string; containers: string[] } {
  const docker = join(env.DOCKER_CONFIG?.trim() || join(home, '.docker'), 'config.json');
  const containers = [
    env.REGISTRY_AUTH_FILE?.trim(),
    env.XDG_RUNTIME_DIR?.trim() && join(env.XDG_RUNTIME_DIR.trim(), 'containers', 'auth.json'),
  ].filter((p): p is string => Boolean(p));
  return { docker, containers };
}

/** The credentials container tools hold for `registry` (a host[:port]), or undefined. */
export async function dockerCredentials(registryHost: string, env: Env): Promise<BoundCredentials | undefined> {
  const registry = normalizeRegistry(registryHost);
  const files = authFiles(env);
  const docker = await readAuthFile(files.docker);
  if (docker) {
    const helper = helperFor(docker, registry);
    const viaHelper = helper ? await runHelper(helper, registry, env, files.docker) : undefined;
    if (viaHelper) return viaHelper;
    const entry = entryFor(docker, registry);
    const found = entry && fromEntry(registry, entry, files.docker);
    if (found) return found;
  }
  for (const path of files.containers) {
    const file = await readAuthFile(path);
    const entry = file && entryFor(file, registry);
    const found = entry && fromEntry(registry, entry, path);
    if (found) return found;
  }
  return undefined;
}
