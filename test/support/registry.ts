/**
 * Test harness: runs a REAL CNCF distribution 2.8 registry (`docker-registry serve config.yml`) on
 * 127.0.0.1, optionally protected by htpasswd (Basic) or by a Docker token server implemented here
 * with node:http. Plain HTTP only; everything lives in a temp dir removed by `stop()`.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { X509Certificate, createPrivateKey, randomBytes, randomUUID, sign, type KeyObject } from 'node:crypto';
import { accessSync, constants as fsConstants, openSync, closeSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import {
  createServer as createHttpServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export type RegistryAuth = 'none' | 'htpasswd' | 'token';

export interface TokenRequest {
  /** Individual scopes requested (GET: every `scope` param; POST: the `scope` field), split on spaces. */
  scope: string[];
  /** The raw Authorization header, if any (test-only; lets tests prove credentials were sent). */
  authorization?: string;
  method: 'GET' | 'POST';
  service?: string;
  /** POST only: the OAuth2 grant_type. */
  grantType?: string;
  /** HTTP status the token server answered with. */
  status: number;
}

export interface RunningRegistry {
  /** '127.0.0.1:PORT' */
  host: string;
  auth: RegistryAuth;
  /** For 'htpasswd' and 'token' (a user valid at the token server). */
  username?: string;
  password?: string;
  /** Token server URL for 'token' (`http://127.0.0.1:PORT/token`). */
  tokenRealm?: string;
  /** Token `service` (JWT aud) for 'token'. */
  tokenService?: string;
  /** Log of token-server requests, in arrival order (for assertions). */
  tokenRequests: TokenRequest[];
  /** Temp dir holding config, storage, keys and `registry.log`. */
  dir: string;
  /** Path of the registry's log file (stdout+stderr). */
  logFile: string;
  /** Kills the registry (and token server) and removes its temp dir. Idempotent. */
  stop(): Promise<void>;
}

export const TOKEN_ISSUER = 'oci-import-test-issuer';
export const TOKEN_SERVICE = 'oci-import-test-registry';
const HTTP_SECRET = 'oci-import-fixed-test-secret';
const READY_TIMEOUT_MS = 15_000;

// ---------------------------------------------------------------------------------------------
// Tool detection
// ---------------------------------------------------------------------------------------------

export function onPath(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, cmd), fsConstants.X_OK);
      return true;
    } catch {
      // keep looking
    }
  }
  return false;
}

/**
 * True when the tools needed by the real-registry harness are on PATH (docker-registry and skopeo,
 * plus htpasswd and openssl which the htpasswd/token modes need). When something is missing and
 * OCI_IMPORT_REQUIRE_REGISTRY=1, throws (so CI cannot silently skip); otherwise returns false so
 * tests can `describe.skipIf(!hasTools)`.
 */
export function requireRegistryTools(): boolean {
  const missing = ['docker-registry', 'skopeo', 'htpasswd', 'openssl'].filter((t) => !onPath(t));
  if (missing.length === 0) return true;
  if (process.env.OCI_IMPORT_REQUIRE_REGISTRY === '1') {
    throw new Error(
      `OCI_IMPORT_REQUIRE_REGISTRY=1 but required tool(s) not found on PATH: ${missing.join(', ')} ` +
        `(install the distribution registry as 'docker-registry', plus skopeo, apache2-utils/htpasswd and openssl)`,
    );
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Process bookkeeping: never leak registries if a test worker dies without calling stop().
// ---------------------------------------------------------------------------------------------

/**
 * Out-of-process watchdog: vitest workers can be killed without running 'exit' hooks, which would
 * orphan the registry. This tiny sh loop kills the registry (and removes its temp dir) once the
 * test process is gone; it exits by itself as soon as the registry exits (normal stop()).
 */
const WATCHDOG = [
  'parent=$1; reg=$2; dir=$3',
  'while kill -0 "$parent" 2>/dev/null; do',
  '  kill -0 "$reg" 2>/dev/null || exit 0',
  '  sleep 1',
  'done',
  'kill -TERM "$reg" 2>/dev/null; sleep 2; kill -KILL "$reg" 2>/dev/null; rm -rf "$dir"',
].join('\n');

function startWatchdog(child: ChildProcess, dir: string): void {
  if (child.pid === undefined) return;
  try {
    const wd = spawn(
      'sh',
      ['-c', WATCHDOG, 'oci-import-registry-watchdog', String(process.pid), String(child.pid), dir],
      {
        detached: true,
        stdio: 'ignore',
      },
    );
    wd.on('error', () => undefined);
    wd.unref();
  } catch {
    // best effort: stop() and the exit hook still apply
  }
}

const live = new Map<ChildProcess, string>();
let exitHookInstalled = false;
function track(child: ChildProcess, dir: string): void {
  live.set(child, dir);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const [c, d] of live) {
        try {
          c.kill('SIGKILL');
        } catch {
          // already gone
        }
        try {
          rmSync(d, { recursive: true, force: true });
        } catch {
          // best effort
        }
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/** A free TCP port on 127.0.0.1 (listen on 0, close, reuse; tiny race accepted, startRegistry retries). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('could not determine a free port'));
        return;
      }
      const { port } = addr;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** GET http://host/v2/ without keep-alive; resolves to the status code or rejects on connection errors. */
function probe(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`http://${host}/v2/`, { method: 'GET', agent: false, timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('probe timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function logTail(file: string, bytes = 4000): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.length > bytes ? '…' + text.slice(-bytes) : text;
  } catch {
    return '(no registry log)';
  }
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = () => {
      clearTimeout(t);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  if (await waitExit(child, 5000)) return;
  child.kill('SIGKILL');
  await waitExit(child, 5000);
}

/** YAML double-quoted scalar (JSON string syntax is valid YAML). */
const q = (s: string) => JSON.stringify(s);

// ---------------------------------------------------------------------------------------------
// Token server (Docker token protocol, GET + OAuth2 POST)
// ---------------------------------------------------------------------------------------------

interface TokenServer {
  server: Server;
  realm: string;
  close(): Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

interface AccessEntry {
  type: string;
  class?: string;
  name: string;
  actions: string[];
}

/** Parses `type[(class)]:name:actions` where name may itself contain ':' (host:port prefix). */
function parseScope(scope: string): AccessEntry | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last <= first) return undefined;
  const typeWithClass = scope.slice(0, first);
  const name = scope.slice(first + 1, last);
  const actions = scope
    .slice(last + 1)
    .split(',')
    .filter(Boolean);
  const m = /^([a-z0-9]+)(?:\(([^)]*)\))?$/i.exec(typeWithClass);
  if (!m || !name) return undefined;
  const entry: AccessEntry = { type: m[1]!, name, actions };
  if (m[2] !== undefined) entry.class = m[2];
  return entry;
}

const GRANTABLE: Record<string, Set<string>> = {
  repository: new Set(['pull', 'push', 'delete', '*']),
  registry: new Set(['*']),
};

function grant(scopes: string[]): AccessEntry[] {
  const out: AccessEntry[] = [];
  for (const s of scopes) {
    const e = parseScope(s);
    if (!e) continue;
    const allowed = GRANTABLE[e.type];
    if (!allowed) continue;
    const actions = e.actions.filter((a) => allowed.has(a));
    // Merge with an existing entry for the same resource.
    const prev = out.find((o) => o.type === e.type && o.name === e.name && o.class === e.class);
    if (prev) {
      for (const a of actions) if (!prev.actions.includes(a)) prev.actions.push(a);
    } else {
      out.push({ ...e, actions });
    }
  }
  return out;
}

function makeJwt(key: KeyObject, certDerB64: string, sub: string, access: AccessEntry[]): string {
  const now = Math.floor(Date.now() / 1000);
  const header = { typ: 'JWT', alg: 'RS256', x5c: [certDerB64] };
  const claims = {
    iss: TOKEN_ISSUER,
    sub,
    aud: TOKEN_SERVICE, // a STRING: distribution 2.8 fails to unmarshal an array
    exp: now + 300,
    nbf: now - 10,
    iat: now,
    jti: randomUUID(),
    access,
  };
  const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const sig = sign('sha256', Buffer.from(signingInput), key); // RSASSA-PKCS1-v1_5 → RS256
  return `${signingInput}.${b64url(sig)}`;
}

/** A test server's request body as text. */
export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseBasic(header: string | undefined): { username: string; password: string } | undefined {
  if (!header) return undefined;
  const m = /^basic\s+(\S+)$/i.exec(header.trim());
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return undefined;
  return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

async function startTokenServer(opts: {
  keyPem: string;
  certPem: string;
  username: string;
  password: string;
  log: TokenRequest[];
}): Promise<TokenServer> {
  const key = createPrivateKey(opts.keyPem);
  const certDerB64 = new X509Certificate(opts.certPem).raw.toString('base64'); // standard base64 DER
  const refreshTokens = new Map<string, string>(); // refresh token → username

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(text)),
      ...headers,
    });
    res.end(text);
  };
  const unauthorized = (res: ServerResponse, message: string) =>
    send(
      res,
      401,
      { errors: [{ code: 'UNAUTHORIZED', message, detail: null }] },
      { 'www-authenticate': 'Basic realm="oci-import-test-token"' },
    );
  const issue = (res: ServerResponse, sub: string, scopes: string[], offline: boolean) => {
    const jwt = makeJwt(key, certDerB64, sub, grant(scopes));
    const body: Record<string, unknown> = {
      token: jwt,
      access_token: jwt,
      expires_in: 300,
      issued_at: new Date().toISOString(),
    };
    if (offline) {
      const rt = randomBytes(24).toString('base64url');
      refreshTokens.set(rt, sub);
      body.refresh_token = rt;
    }
    send(res, 200, body);
  };
  const validUser = (u: string | undefined, p: string | undefined) => u === opts.username && p === opts.password;

  const server = createHttpServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const authorization = req.headers.authorization;
      if (url.pathname !== '/token') {
        send(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'not found' }] });
        return;
      }
      if (req.method === 'GET') {
        const scope = url.searchParams
          .getAll('scope')
          .flatMap((s) => s.split(' '))
          .filter(Boolean);
        const entry: TokenRequest = { method: 'GET', scope, status: 0 };
        if (authorization !== undefined) entry.authorization = authorization;
        const service = url.searchParams.get('service');
        if (service !== null) entry.service = service;
        opts.log.push(entry);
        const creds = parseBasic(authorization);
        if (!creds) {
          entry.status = 401;
          unauthorized(res, 'authentication required (anonymous access is not allowed)');
          return;
        }
        if (!validUser(creds.username, creds.password)) {
          entry.status = 401;
          unauthorized(res, 'invalid username or password');
          return;
        }
        if (service !== null && service !== TOKEN_SERVICE) {
          entry.status = 400;
          send(res, 400, { errors: [{ code: 'DENIED', message: `unknown service ${service}` }] });
          return;
        }
        entry.status = 200;
        const offline = url.searchParams.get('offline_token') === 'true';
        issue(res, creds.username, scope, offline);
        return;
      }
      if (req.method === 'POST') {
        const form = new URLSearchParams(await readBody(req));
        const scope = (form.get('scope') ?? '').split(' ').filter(Boolean);
        const grantType = form.get('grant_type') ?? '';
        const entry: TokenRequest = { method: 'POST', scope, grantType, status: 0 };
        if (authorization !== undefined) entry.authorization = authorization;
        const service = form.get('service');
        if (service !== null) entry.service = service;
        opts.log.push(entry);
        const offline = form.get('access_type') === 'offline';
        if (grantType === 'password') {
          const basic = parseBasic(authorization);
          const u = form.get('username') ?? basic?.username;
          const p = form.get('password') ?? basic?.password;
          if (u === undefined || u === null || p === undefined || p === null) {
            entry.status = 401;
            unauthorized(res, 'authentication required (anonymous access is not allowed)');
            return;
          }
          if (!validUser(u, p)) {
            entry.status = 401;
            unauthorized(res, 'invalid username or password');
            return;
          }
          entry.status = 200;
          issue(res, u, scope, offline);
          return;
        }
        if (grantType === 'refresh_token') {
          const sub = refreshTokens.get(form.get('refresh_token') ?? '');
          if (sub === undefined) {
            entry.status = 401;
            unauthorized(res, 'invalid refresh token');
            return;
          }
          entry.status = 200;
          issue(res, sub, scope, offline);
          return;
        }
        entry.status = 400;
        send(res, 400, { error: 'unsupported_grant_type', error_description: `grant_type ${grantType}` });
        return;
      }
      send(res, 405, { errors: [{ code: 'UNSUPPORTED', message: 'method not allowed' }] }, { allow: 'GET, POST' });
    })().catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, { errors: [{ code: 'UNKNOWN', message: String(err) }] });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('token server has no address');
  return {
    server,
    realm: `http://127.0.0.1:${addr.port}/token`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------------------------

function registryConfig(dir: string, port: number, authYaml: string): string {
  return [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${q(join(dir, 'data'))}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:', // when overriding, age/interval/dryrun must all be present (else panic)
    '      enabled: false',
    '      age: 168h',
    '      interval: 24h',
    '      dryrun: false',
    'http:',
    `  addr: ${q(`127.0.0.1:${port}`)}`,
    `  secret: ${q(HTTP_SECRET)}`,
    authYaml,
    'validation:',
    '  manifests:',
    '    urls:',
    `      allow: [${q('^https?://')}]`,
    '',
  ]
    .filter((l) => l !== '')
    .join('\n')
    .concat('\n');
}

/** Environment for the registry without any REGISTRY_* overrides leaking in from the machine. */
function registryEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('REGISTRY_')) env[k] = v;
  return env;
}

/** A token service run by the caller (e.g. test/support/azure.ts's ACR-style /oauth2 endpoints). */
export interface ExternalTokenService {
  /** Token endpoint the registry's challenges point to. */
  realm: string;
  /** Challenge `service`, and the `aud` the registry requires in tokens. */
  service: string;
  /** `iss` the registry requires in tokens. */
  issuer: string;
  /** PEM certificate whose key signs the tokens (RS256, the certificate in the JWT's x5c). */
  certPem: string;
}

export async function startRegistry(opts?: {
  auth?: RegistryAuth;
  username?: string;
  password?: string;
  /** With auth 'token': trust this token service instead of starting the built-in one (no username/password then). */
  tokenService?: ExternalTokenService;
}): Promise<RunningRegistry> {
  const auth: RegistryAuth = opts?.auth ?? 'none';
  const dir = await mkdtemp(join(tmpdir(), `oci-import-registry-${auth}-`));
  const logFile = join(dir, 'registry.log');
  const tokenRequests: TokenRequest[] = [];
  let token: TokenServer | undefined;
  let child: ChildProcess | undefined;

  const cleanup = async () => {
    if (child) {
      await killChild(child);
      live.delete(child);
    }
    if (token) await token.close();
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await mkdir(join(dir, 'data'));
    let username: string | undefined;
    let password: string | undefined;
    let authYaml = '';

    const external = auth === 'token' ? opts?.tokenService : undefined;
    if (auth === 'htpasswd' || (auth === 'token' && !external)) {
      username = opts?.username ?? 'tester';
      // a leading letter: a password starting with "-" would read as an option on a command line
      password = opts?.password ?? `p${randomBytes(12).toString('base64url')}`;
      if (username.includes(':')) throw new Error('username must not contain ":"');
    }

    if (auth === 'htpasswd') {
      const { stdout } = await execFileP('htpasswd', ['-Bbn', username!, password!]);
      const htpasswdFile = join(dir, 'htpasswd');
      await writeFile(htpasswdFile, stdout.trim() + '\n', { mode: 0o600 });
      authYaml = ['auth:', '  htpasswd:', `    realm: ${q('oci-import-test')}`, `    path: ${q(htpasswdFile)}`].join(
        '\n',
      );
    } else if (auth === 'token' && external) {
      const certFile = join(dir, 'token.crt');
      await writeFile(certFile, external.certPem);
      authYaml = [
        'auth:',
        '  token:',
        `    realm: ${q(external.realm)}`,
        `    service: ${q(external.service)}`,
        `    issuer: ${q(external.issuer)}`,
        `    rootcertbundle: ${q(certFile)}`,
      ].join('\n');
    } else if (auth === 'token') {
      const keyFile = join(dir, 'token.key');
      const certFile = join(dir, 'token.crt');
      await execFileP('openssl', [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-sha256',
        '-days',
        '2',
        '-subj',
        '/CN=oci-import-test-token-signer',
        '-keyout',
        keyFile,
        '-out',
        certFile,
      ]);
      const [keyPem, certPem] = await Promise.all([readFile(keyFile, 'utf8'), readFile(certFile, 'utf8')]);
      token = await startTokenServer({ keyPem, certPem, username: username!, password: password!, log: tokenRequests });
      authYaml = [
        'auth:',
        '  token:',
        `    realm: ${q(token.realm)}`,
        `    service: ${q(TOKEN_SERVICE)}`,
        `    issuer: ${q(TOKEN_ISSUER)}`,
        `    rootcertbundle: ${q(certFile)}`,
      ].join('\n');
    }

    const configFile = join(dir, 'config.yml');
    let lastError = '';
    for (let attempt = 1; attempt <= 3; attempt++) {
      const port = await freePort();
      const host = `127.0.0.1:${port}`;
      await writeFile(configFile, registryConfig(dir, port, authYaml));
      const fd = openSync(logFile, 'a');
      try {
        child = spawn('docker-registry', ['serve', configFile], {
          cwd: dir,
          env: registryEnv(),
          stdio: ['ignore', fd, fd],
        });
      } finally {
        closeSync(fd);
      }
      track(child, dir);
      startWatchdog(child, dir);
      let spawnError: Error | undefined;
      child.once('error', (e) => {
        spawnError = e;
      });

      const deadline = Date.now() + READY_TIMEOUT_MS;
      let ready = false;
      while (Date.now() < deadline) {
        if (spawnError) break;
        if (child.exitCode !== null || child.signalCode !== null) break;
        try {
          const status = await probe(host);
          if (status === 200 || status === 401) {
            ready = true;
            break;
          }
        } catch {
          // not listening yet
        }
        await sleep(50);
      }
      if (ready) {
        let stopped: Promise<void> | undefined;
        const reg: RunningRegistry = {
          host,
          auth,
          tokenRequests,
          dir,
          logFile,
          stop: () => (stopped ??= cleanup()),
        };
        if (username !== undefined) reg.username = username;
        if (password !== undefined) reg.password = password;
        if (external) {
          reg.tokenRealm = external.realm;
          reg.tokenService = external.service;
        }
        if (token) {
          reg.tokenRealm = token.realm;
          reg.tokenService = TOKEN_SERVICE;
        }
        return reg;
      }
      const exited = child.exitCode !== null || child.signalCode !== null;
      await killChild(child);
      live.delete(child);
      const tail = await logTail(logFile);
      lastError =
        `docker-registry on ${host} did not answer GET /v2/ with 200/401 ` +
        (spawnError
          ? `(spawn failed: ${spawnError.message})`
          : exited
            ? `(process exited with ${child.exitCode ?? child.signalCode})`
            : `within ${READY_TIMEOUT_MS} ms`) +
        `\n--- registry log tail (${logFile}) ---\n${tail}`;
      child = undefined;
      // Retry only for a lost port race; anything else is a real failure.
      if (!/address already in use/i.test(tail)) break;
    }
    throw new Error(lastError);
  } catch (err) {
    await cleanup();
    throw err;
  }
}
