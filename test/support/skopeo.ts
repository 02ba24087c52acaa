/**
 * Thin wrappers around the skopeo CLI (1.9) for integration tests against the plain-HTTP registries
 * of ./registry.ts. Isolation: every call uses a private empty auth file, empty registries.conf,
 * an accept-anything policy, an empty registries.d and a private HOME/XDG/DOCKER_CONFIG, so nothing
 * from the machine (credentials, mirrors, signature policy) leaks in. Anonymous calls pass
 * --no-creds explicitly. Passwords never appear in error messages.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Creds {
  username: string;
  password: string;
}

export interface Sandbox {
  dir: string;
  authFile: string;
  registriesConf: string;
  policy: string;
  registriesD: string;
  tmp: string;
  env: NodeJS.ProcessEnv;
}

/**
 * A fresh sandbox per skopeo call (a handful of tiny files), removed right after the call: exit hooks
 * do not run reliably in vitest workers, so nothing long-lived is created.
 */
async function makeSandbox(): Promise<Sandbox> {
  const dir = await mkdtemp(join(tmpdir(), 'oci-import-skopeo-'));
  const authFile = join(dir, 'auth.json');
  const registriesConf = join(dir, 'registries.conf');
  const policy = join(dir, 'policy.json');
  const registriesD = join(dir, 'registries.d');
  const tmp = join(dir, 'tmp');
  const home = join(dir, 'home');
  await Promise.all([mkdir(registriesD), mkdir(tmp), mkdir(home)]);
  await Promise.all([
    writeFile(authFile, '{}\n'),
    writeFile(registriesConf, ''),
    writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] })),
  ]);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_RUNTIME_DIR: join(home, 'run'),
    DOCKER_CONFIG: join(home, '.docker'),
    REGISTRY_AUTH_FILE: authFile,
    CONTAINERS_REGISTRIES_CONF: registriesConf,
    CONTAINERS_POLICY_JSON: policy,
    TMPDIR: tmp,
  };
  return { dir, authFile, registriesConf, policy, registriesD, tmp, env };
}

function redact(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) if (s) out = out.split(s).join('***');
  return out;
}

/**
 * Runs `fn` with a fresh sandbox and the global isolation flags every skopeo call starts with, then
 * removes the sandbox (for callers that spawn skopeo themselves, e.g. the benchmark under /usr/bin/time).
 */
export async function withSkopeoSandbox<T>(fn: (sb: Sandbox, globalArgs: string[]) => Promise<T>): Promise<T> {
  const sb = await makeSandbox();
  try {
    return await fn(sb, [
      '--registries-conf',
      sb.registriesConf, // hidden global flag in 1.9; CONTAINERS_REGISTRIES_CONF is set too
      '--policy',
      sb.policy,
      '--registries.d',
      sb.registriesD,
      '--tmpdir',
      sb.tmp,
    ]);
  } finally {
    await rm(sb.dir, { recursive: true, force: true });
  }
}

/**
 * Runs skopeo in a fresh sandbox with the global isolation flags; returns stdout bytes. `args` may be
 * a function of the sandbox (to point --authfile at it). Errors are redacted (`secrets` → ***).
 */
export async function runSkopeo(
  args: string[] | ((sb: Sandbox) => string[]),
  secrets: string[] = [],
  timeoutMs = 120_000,
): Promise<Buffer> {
  return withSkopeoSandbox((sb, globalArgs) => {
    const full = [...globalArgs, ...(typeof args === 'function' ? args(sb) : args)];
    return new Promise<Buffer>((resolve, reject) => {
      execFile(
        'skopeo',
        full,
        { env: sb.env, encoding: 'buffer', maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs },
        (err, stdout, stderr) => {
          if (err) {
            const e = err as NodeJS.ErrnoException & { code?: number | string; signal?: string };
            const cmd = redact(['skopeo', ...full].join(' '), secrets);
            const msg = redact(stderr.toString('utf8').trim(), secrets);
            reject(new Error(`${cmd} failed (exit ${String(e.code ?? e.signal)}): ${msg}`));
            return;
          }
          resolve(stdout);
        },
      );
    });
  });
}

export function credArgs(sb: Sandbox, prefix: '' | 'src-' | 'dest-', creds: Creds | undefined): string[] {
  const authfile = [`--${prefix}authfile`, sb.authFile];
  if (!creds) return [...authfile, `--${prefix}no-creds`];
  return [...authfile, `--${prefix}creds`, `${creds.username}:${creds.password}`];
}

const secretsOf = (...c: (Creds | undefined)[]) => c.flatMap((x) => (x ? [x.password] : []));

/** `skopeo inspect --raw docker://ref` — the exact manifest bytes the registry serves. */
export async function inspectRaw(ref: string, creds?: Creds): Promise<Buffer> {
  return runSkopeo(
    (sb) => ['inspect', '--raw', '--tls-verify=false', ...credArgs(sb, '', creds), `docker://${ref}`],
    secretsOf(creds),
  );
}

/** 'sha256:' + sha256 of the raw manifest bytes. */
export async function manifestDigest(ref: string, creds?: Creds): Promise<string> {
  const raw = await inspectRaw(ref, creds);
  return 'sha256:' + createHash('sha256').update(raw).digest('hex');
}

/**
 * `skopeo copy --all docker://ref oci:destDir` — proves every platform/blob can be pulled back.
 * --dest-oci-accept-uncompressed-layers keeps uncompressed layers as they are (no re-compression).
 */
export async function copyAllToDir(ref: string, destDir: string, creds?: Creds): Promise<void> {
  await runSkopeo(
    (sb) => [
      'copy',
      '--all',
      '--quiet',
      '--retry-times',
      '0',
      '--src-tls-verify=false',
      ...credArgs(sb, 'src-', creds),
      '--dest-oci-accept-uncompressed-layers',
      `docker://${ref}`,
      `oci:${destDir}`,
    ],
    secretsOf(creds),
  );
}

/** `skopeo copy --all --preserve-digests oci:layoutDir docker://ref` (layout must hold exactly one index.json entry). */
export async function pushOciLayout(layoutDir: string, ref: string, creds?: Creds): Promise<void> {
  await runSkopeo(
    (sb) => [
      'copy',
      '--all',
      '--preserve-digests',
      '--quiet',
      '--retry-times',
      '0',
      '--dest-tls-verify=false',
      ...credArgs(sb, 'dest-', creds),
      `oci:${layoutDir}`,
      `docker://${ref}`,
    ],
    secretsOf(creds),
  );
}
