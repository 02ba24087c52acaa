/**
 * Local stand-ins for the Azure services the Entra ID paths talk to — all on 127.0.0.1, no Azure needed:
 *
 * - `startEntra()`: an Entra ID token issuer (RS256, its own key) behind the App Service managed-identity
 *   protocol that @azure/identity's ManagedIdentityCredential speaks when IDENTITY_ENDPOINT and
 *   IDENTITY_HEADER are set (MSAL's `AppService` source): `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01
 *   &resource=<audience>[&client_id=<user-assigned>]` with header `X-IDENTITY-HEADER: <IDENTITY_HEADER>` →
 *   `{ access_token, expires_on (epoch seconds, string), resource, token_type, client_id }`.
 * - `startAcr()`: an Azure Container Registry as the client sees it — ACR's documented `/oauth2/exchange`
 *   (Entra ID token → refresh token) and `/oauth2/token` (refresh token + scope → access token), which
 *   validate what they receive (signature, audience, tenant, expiry, role assignments) and mint the JWTs
 *   a REAL token-auth docker-registry accepts; every other path is proxied to that registry. Optional
 *   firewall (403 `client with IP … is not allowed access`, as ACR answers).
 * - `startArm()`: Azure Resource Manager's `GET /subscriptions/…/registries/<name>?api-version=…`.
 *
 * Every server logs what it received (forms as field → values) so tests can assert the exact protocol.
 */
import { execFile } from 'node:child_process';
import {
  X509Certificate,
  createHmac,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  randomUUID,
  sign,
  timingSafeEqual,
  verify,
  type KeyObject,
} from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readBody, startRegistry, type RunningRegistry } from './registry.js';

const execFileP = promisify(execFile);
const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

export const ACR_AUDIENCE = 'https://containerregistry.azure.net';
/** ACR's `docker login` user name for an ACR refresh token as password. */
export const ACR_NULL_USER = '00000000-0000-0000-0000-000000000000';

// ---------------------------------------------------------------------------------------------
// Small HTTP helpers
// ---------------------------------------------------------------------------------------------

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('server has no address');
  return addr.port;
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

/** Form fields as name → every value, in order. */
export type Form = Record<string, string[]>;

function parseForm(text: string): Form {
  const form: Form = {};
  for (const [k, v] of new URLSearchParams(text)) (form[k] ??= []).push(v);
  return form;
}

const first = (form: Form, name: string): string | undefined => form[name]?.[0];

function jwtPayload(token: string): Record<string, unknown> {
  const parts = token.split('.');
  return JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Entra ID + managed-identity endpoint
// ---------------------------------------------------------------------------------------------

export interface EntraClaims {
  aud: string;
  iss: string;
  tid: string;
  oid: string;
  appid: string;
  iat: number;
  nbf: number;
  exp: number;
}

export interface ManagedIdentityRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** The X-IDENTITY-HEADER value received. */
  identityHeader?: string;
  status: number;
}

export interface RunningEntra {
  /** Value for IDENTITY_ENDPOINT. */
  endpoint: string;
  /** Value for IDENTITY_HEADER. */
  header: string;
  /** The app's tenant. */
  tenant: string;
  /** Object ID of the system-assigned identity. */
  systemObjectId: string;
  /** User-assigned identities: client ID → object ID (add more at will). */
  userAssigned: Map<string, string>;
  requests: ManagedIdentityRequest[];
  /** Lifetime of managed-identity tokens, seconds (default 3600). */
  lifetimeSeconds: number;
  /** Mints an Entra ID access token as this issuer (e.g. a token of another tenant, given as password). */
  mint(o: { tenant: string; objectId: string; audience: string; lifetimeSeconds?: number; appId?: string }): string;
  /** Checks a token's signature and expiry; returns its claims or why not. */
  verify(token: string): { ok: true; claims: EntraClaims } | { ok: false; reason: string };
  stop(): Promise<void>;
}

export async function startEntra(
  opts: { tenant?: string; userAssigned?: Record<string, string> } = {},
): Promise<RunningEntra> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const tenant = opts.tenant ?? randomUUID();
  const header = randomBytes(16).toString('hex');
  const requests: ManagedIdentityRequest[] = [];
  const userAssigned = new Map(Object.entries(opts.userAssigned ?? {}));
  const systemObjectId = randomUUID();

  const mint: RunningEntra['mint'] = (o) => {
    const now = nowSeconds();
    const claims: EntraClaims = {
      aud: o.audience,
      iss: `https://sts.windows.net/${o.tenant}/`,
      tid: o.tenant,
      oid: o.objectId,
      appid: o.appId ?? o.objectId,
      iat: now,
      nbf: now - 5,
      exp: now + (o.lifetimeSeconds ?? 3600),
    };
    const input = `${b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', kid: 'oci-import-test' }))}.${b64url(JSON.stringify(claims))}`;
    return `${input}.${b64url(sign('sha256', Buffer.from(input), privateKey))}`;
  };

  const verifyToken: RunningEntra['verify'] = (token) => {
    const parts = token.split('.');
    if (parts.length !== 3) return { ok: false, reason: 'not a JWT' };
    if (!verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), publicKey, Buffer.from(parts[2]!, 'base64url'))) {
      return { ok: false, reason: 'bad signature' };
    }
    const claims = jwtPayload(token) as unknown as EntraClaims;
    if (claims.exp <= nowSeconds()) return { ok: false, reason: 'expired' };
    return { ok: true, claims };
  };

  const entra: RunningEntra = {
    endpoint: '',
    header,
    tenant,
    systemObjectId,
    userAssigned,
    requests,
    lifetimeSeconds: 3600,
    mint,
    verify: verifyToken,
    stop: async () => undefined,
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const entry: ManagedIdentityRequest = {
      method: req.method ?? '',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      status: 0,
    };
    const got = req.headers['x-identity-header'];
    if (typeof got === 'string') entry.identityHeader = got;
    requests.push(entry);
    const answer = (status: number, body: unknown) => {
      entry.status = status;
      sendJson(res, status, body);
    };
    if (req.method !== 'GET' || url.pathname !== '/msi/token') return answer(404, { error: 'not_found' });
    if (got !== header) return answer(401, { statusCode: 401, message: 'X-IDENTITY-HEADER is missing or wrong' });
    if (url.searchParams.get('api-version') !== '2019-08-01')
      return answer(400, { statusCode: 400, message: 'api-version 2019-08-01 expected' });
    const resource = url.searchParams.get('resource');
    if (!resource) return answer(400, { statusCode: 400, message: 'resource is required' });
    const clientId = url.searchParams.get('client_id');
    const objectId = clientId ? userAssigned.get(clientId) : systemObjectId;
    if (!objectId) {
      return answer(400, {
        statusCode: 400,
        message: 'No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId.',
      });
    }
    const token = mint({
      tenant,
      objectId,
      audience: resource,
      lifetimeSeconds: entra.lifetimeSeconds,
      appId: clientId ?? objectId,
    });
    answer(200, {
      access_token: token,
      expires_on: String(nowSeconds() + entra.lifetimeSeconds),
      resource,
      token_type: 'Bearer',
      client_id: clientId ?? objectId,
    });
  });
  const port = await listen(server);
  entra.endpoint = `http://127.0.0.1:${port}/msi/token`;
  entra.stop = () => close(server);
  return entra;
}

// ---------------------------------------------------------------------------------------------
// ACR: /oauth2/exchange + /oauth2/token in front of a real token-auth docker-registry
// ---------------------------------------------------------------------------------------------

export interface AcrRequest {
  method: string;
  path: string;
  /** POST form fields (exchange, token) or GET query (token), as sent. */
  form: Form;
  /** Basic user of a GET token request. */
  basicUser?: string;
  status: number;
  /** Why a request was refused (test diagnostics). */
  reason?: string;
}

export interface RunningAcr {
  /** Login server: `127.0.0.1:<port>`. */
  loginServer: string;
  /** The `service` its challenges name and its /oauth2 endpoints require (default: the login server, as ACR). */
  service: string;
  /** The tenant the registry lives in. */
  tenant: string;
  /** Role assignments: object ID → granted actions (`pull`, `push`). */
  roles: Map<string, Set<'pull' | 'push'>>;
  /** Audiences the exchange accepts (default: the ACR audience and Resource Manager's). */
  audiences: Set<string>;
  /** When on, every request is refused as ACR's firewall does. */
  firewall: boolean;
  /** Lifetimes of minted tokens, seconds. */
  refreshLifetimeSeconds: number;
  accessLifetimeSeconds: number;
  /** Admin user (basic auth at GET /oauth2/token: skopeo, fixtures). */
  admin: { username: string; password: string };
  /** /oauth2/* requests, in arrival order. */
  requests: AcrRequest[];
  /** Registry requests proxied to docker-registry (everything but /oauth2/*). */
  proxied: number;
  /** Every refresh token minted so far stops working (as a revocation would). */
  revokeRefreshTokens(): void;
  registry: RunningRegistry;
  stop(): Promise<void>;
}

const ISSUER = 'oci-import-test-acr';
const FIREWALL_BODY = {
  errors: [
    {
      code: 'DENIED',
      message: "client with IP '127.0.0.1' is not allowed access. Refer https://aka.ms/acr/firewall to grant access.",
    },
  ],
};

interface Access {
  type: string;
  name: string;
  actions: string[];
}

function parseScope(scope: string): Access | undefined {
  const a = scope.indexOf(':');
  const b = scope.lastIndexOf(':');
  if (a <= 0 || b <= a) return undefined;
  return {
    type: scope.slice(0, a),
    name: scope.slice(a + 1, b),
    actions: scope
      .slice(b + 1)
      .split(',')
      .filter(Boolean),
  };
}

async function makeSigningCert(): Promise<{ key: KeyObject; certPem: string; certDer: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'oci-import-acr-key-'));
  try {
    const keyFile = join(dir, 'key.pem');
    const certFile = join(dir, 'cert.pem');
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
      '/CN=oci-import-test-acr-signer',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ]);
    const [keyPem, certPem] = await Promise.all([readFile(keyFile, 'utf8'), readFile(certFile, 'utf8')]);
    return { key: createPrivateKey(keyPem), certPem, certDer: new X509Certificate(certPem).raw.toString('base64') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function startAcr(opts: {
  entra: RunningEntra;
  /** Default: the Entra stand-in's tenant. */
  tenant?: string;
  roles?: Record<string, ('pull' | 'push')[]>;
  /** A service name other than the login server (a registry behind a front whose host is not its service). */
  service?: string;
}): Promise<RunningAcr> {
  const signer = await makeSigningCert();
  const refreshSecret = randomBytes(32);
  let refreshGeneration = 0;
  const requests: AcrRequest[] = [];
  const server = createServer();
  const port = await listen(server);
  const loginServer = `127.0.0.1:${port}`;
  const service = opts.service ?? loginServer;
  const acr: RunningAcr = {
    loginServer,
    service,
    tenant: opts.tenant ?? opts.entra.tenant,
    roles: new Map(Object.entries(opts.roles ?? {}).map(([k, v]) => [k, new Set(v)])),
    audiences: new Set([ACR_AUDIENCE, 'https://management.azure.com']),
    firewall: false,
    refreshLifetimeSeconds: 3 * 3600,
    accessLifetimeSeconds: 75 * 60,
    // a letter first: a password starting with '-' is read as an option by the CLI's --password (a usage error)
    admin: { username: 'admin', password: `p${randomBytes(12).toString('base64url')}` },
    requests,
    proxied: 0,
    revokeRefreshTokens: () => {
      refreshGeneration++;
    },
    registry: undefined as unknown as RunningRegistry,
    stop: async () => undefined,
  };

  const registryJwt = (sub: string, access: Access[]): string => {
    const now = nowSeconds();
    const header = { typ: 'JWT', alg: 'RS256', x5c: [signer.certDer] };
    const claims = {
      iss: ISSUER,
      sub,
      aud: service,
      exp: now + acr.accessLifetimeSeconds,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    return `${input}.${b64url(sign('sha256', Buffer.from(input), signer.key))}`;
  };
  const refreshJwt = (oid: string, tid: string): string => {
    const now = nowSeconds();
    const claims = {
      iss: ISSUER,
      sub: oid,
      tid,
      aud: service,
      grant_type: 'refresh_token',
      gen: refreshGeneration,
      iat: now,
      nbf: now - 10,
      exp: now + acr.refreshLifetimeSeconds,
      jti: randomUUID(),
    };
    const input = `${b64url(JSON.stringify({ typ: 'JWT', alg: 'HS256' }))}.${b64url(JSON.stringify(claims))}`;
    return `${input}.${b64url(createHmac('sha256', refreshSecret).update(input).digest())}`;
  };
  /** The subject of a valid refresh token, or why not. */
  const checkRefresh = (token: string): { sub: string } | { reason: string } => {
    const parts = token.split('.');
    if (parts.length !== 3) return { reason: 'refresh token is not a JWT' };
    const want = createHmac('sha256', refreshSecret).update(`${parts[0]}.${parts[1]}`).digest();
    const got = Buffer.from(parts[2]!, 'base64url');
    if (got.length !== want.length || !timingSafeEqual(got, want)) return { reason: 'refresh token signature' };
    const claims = jwtPayload(token) as { sub: string; exp: number; gen: number; aud: string };
    if (claims.exp <= nowSeconds()) return { reason: 'refresh token expired' };
    if (claims.gen !== refreshGeneration) return { reason: 'refresh token revoked' };
    if (claims.aud !== service) return { reason: 'refresh token of another registry' };
    return { sub: claims.sub };
  };
  /** What `sub` may do: the requested actions it holds (the admin holds all). */
  const grant = (sub: string, scopes: string[]): Access[] => {
    const held = sub === acr.admin.username ? new Set(['pull', 'push']) : (acr.roles.get(sub) ?? new Set<string>());
    const out: Access[] = [];
    for (const s of scopes) {
      const a = parseScope(s);
      if (!a || a.type !== 'repository') continue;
      out.push({ ...a, actions: a.actions.filter((x) => held.has(x)) });
    }
    return out;
  };
  const unauthorized = (res: ServerResponse, entry: AcrRequest, reason: string) => {
    entry.status = 401;
    entry.reason = reason;
    sendJson(res, 401, {
      errors: [
        {
          code: 'UNAUTHORIZED',
          message: `authentication required, visit https://aka.ms/acr/authorization for more information. (${reason})`,
        },
      ],
    });
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (!url.pathname.startsWith('/oauth2/')) {
        if (acr.firewall) {
          await readBody(req);
          sendJson(res, 403, FIREWALL_BODY);
          return;
        }
        acr.proxied++;
        proxy(req, res, acr.registry.host);
        return;
      }
      const entry: AcrRequest = { method: req.method ?? '', path: url.pathname, form: {}, status: 0 };
      requests.push(entry);
      if (req.method === 'POST') entry.form = parseForm(await readBody(req));
      else entry.form = parseForm(url.search.slice(1));
      if (acr.firewall) {
        entry.status = 403;
        entry.reason = 'firewall';
        sendJson(res, 403, FIREWALL_BODY);
        return;
      }
      const asked = first(entry.form, 'service');

      if (url.pathname === '/oauth2/exchange' && req.method === 'POST') {
        if (first(entry.form, 'grant_type') !== 'access_token') {
          entry.status = 400;
          sendJson(res, 400, { errors: [{ code: 'UNSUPPORTED', message: 'grant_type must be access_token' }] });
          return;
        }
        if (asked !== service) return unauthorized(res, entry, `service ${asked ?? '(none)'} is not ${service}`);
        const tenant = first(entry.form, 'tenant');
        if (tenant !== undefined && tenant !== acr.tenant)
          return unauthorized(res, entry, `tenant ${tenant} is not the registry's`);
        const checked = opts.entra.verify(first(entry.form, 'access_token') ?? '');
        if (!checked.ok) return unauthorized(res, entry, `Entra ID token: ${checked.reason}`);
        const aud = checked.claims.aud.replace(/\/+$/, '');
        if (!acr.audiences.has(aud)) return unauthorized(res, entry, `audience ${aud} not accepted`);
        if (checked.claims.tid !== acr.tenant)
          return unauthorized(res, entry, `token of tenant ${checked.claims.tid}, registry in ${acr.tenant}`);
        entry.status = 200;
        sendJson(res, 200, { refresh_token: refreshJwt(checked.claims.oid, checked.claims.tid) });
        return;
      }

      if (url.pathname === '/oauth2/token') {
        const scopes = (entry.form.scope ?? []).flatMap((s) => s.split(' ')).filter(Boolean);
        let sub: string;
        if (req.method === 'POST') {
          if (first(entry.form, 'grant_type') !== 'refresh_token') {
            entry.status = 400;
            sendJson(res, 400, { errors: [{ code: 'UNSUPPORTED', message: 'grant_type must be refresh_token' }] });
            return;
          }
          if (asked !== service) return unauthorized(res, entry, `service ${asked ?? '(none)'} is not ${service}`);
          const r = checkRefresh(first(entry.form, 'refresh_token') ?? '');
          if ('reason' in r) return unauthorized(res, entry, r.reason);
          sub = r.sub;
        } else if (req.method === 'GET') {
          // docker login style: admin user, or the null user with a refresh token as password.
          const m = /^basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
          const decoded = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
          const cut = decoded.indexOf(':');
          const [user, pass] = cut < 0 ? ['', ''] : [decoded.slice(0, cut), decoded.slice(cut + 1)];
          entry.basicUser = user;
          if (user === acr.admin.username && pass === acr.admin.password) {
            sub = user;
          } else if (user === ACR_NULL_USER) {
            const r = checkRefresh(pass);
            if ('reason' in r) return unauthorized(res, entry, r.reason);
            sub = r.sub;
          } else {
            return unauthorized(res, entry, 'anonymous pull is not enabled');
          }
        } else {
          entry.status = 405;
          sendJson(res, 405, { errors: [{ code: 'UNSUPPORTED', message: 'method not allowed' }] });
          return;
        }
        entry.status = 200;
        const token = registryJwt(sub, grant(sub, scopes));
        sendJson(res, 200, req.method === 'GET' ? { token, access_token: token } : { access_token: token });
        return;
      }
      entry.status = 404;
      sendJson(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'not found' }] });
    })().catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { errors: [{ code: 'UNKNOWN', message: String(err) }] });
      else res.destroy();
    });
  });

  try {
    acr.registry = await startRegistry({
      auth: 'token',
      tokenService: { realm: `http://${loginServer}/oauth2/token`, service, issuer: ISSUER, certPem: signer.certPem },
    });
  } catch (err) {
    await close(server);
    throw err;
  }
  acr.stop = async () => {
    await close(server);
    await acr.registry.stop();
  };
  return acr;
}

/** Streams a request to the registry and its answer back, Host header kept (the registry builds Locations from it). */
function proxy(req: IncomingMessage, res: ServerResponse, upstream: string): void {
  const [host, port] = upstream.split(':');
  const out = httpRequest(
    { host, port: Number(port), method: req.method, path: req.url, headers: req.headers, agent: false },
    (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    },
  );
  out.on('error', () => {
    if (!res.headersSent) sendJson(res, 502, { errors: [{ code: 'UNKNOWN', message: 'registry unreachable' }] });
    else res.destroy();
  });
  req.pipe(out);
}

// ---------------------------------------------------------------------------------------------
// Azure Resource Manager: GET a registry resource
// ---------------------------------------------------------------------------------------------

export interface ArmRequest {
  path: string;
  apiVersion?: string;
  /** Audience of the bearer token received (when it verified). */
  audience?: string;
  objectId?: string;
  status: number;
}

export interface ArmRegistry {
  loginServer: string;
  publicNetworkAccess?: 'Enabled' | 'Disabled';
  networkRuleBypassOptions?: 'AzureServices' | 'None';
  defaultAction?: 'Allow' | 'Deny';
  /** Object IDs allowed to read the resource (Reader). */
  readers: Set<string>;
}

export interface RunningArm {
  /** Value for ARM_ENDPOINT. */
  endpoint: string;
  /** The audience tokens must carry (`<endpoint>`, as Resource Manager's own origin). */
  audience: string;
  /** Registries by resource ID (lowercase keys). */
  registries: Map<string, ArmRegistry>;
  requests: ArmRequest[];
  stop(): Promise<void>;
}

export function registryResourceId(subscription: string, group: string, name: string): string {
  return `/subscriptions/${subscription}/resourceGroups/${group}/providers/Microsoft.ContainerRegistry/registries/${name}`;
}

export async function startArm(opts: { entra: RunningEntra; tenant?: string }): Promise<RunningArm> {
  const requests: ArmRequest[] = [];
  const server = createServer();
  const port = await listen(server);
  const arm: RunningArm = {
    endpoint: `http://127.0.0.1:${port}`,
    audience: `http://127.0.0.1:${port}`,
    registries: new Map(),
    requests,
    stop: () => close(server),
  };
  const tenant = opts.tenant ?? opts.entra.tenant;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const entry: ArmRequest = { path: url.pathname, status: 0 };
    const apiVersion = url.searchParams.get('api-version');
    if (apiVersion !== null) entry.apiVersion = apiVersion;
    requests.push(entry);
    const answer = (status: number, code: string, message: string) => {
      entry.status = status;
      sendJson(res, status, { error: { code, message } });
    };
    const m = /^bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return answer(401, 'AuthenticationFailed', 'Authentication failed. The Authorization header is missing.');
    const checked = opts.entra.verify(m[1]!);
    if (!checked.ok)
      return answer(401, 'InvalidAuthenticationToken', `The access token is invalid (${checked.reason}).`);
    entry.audience = checked.claims.aud;
    entry.objectId = checked.claims.oid;
    if (checked.claims.aud.replace(/\/+$/, '') !== arm.audience)
      return answer(
        401,
        'InvalidAuthenticationToken',
        `The access token has an invalid audience ${checked.claims.aud}.`,
      );
    if (checked.claims.tid !== tenant) {
      return answer(
        401,
        'InvalidAuthenticationTokenTenant',
        `The access token is from the wrong issuer 'https://sts.windows.net/${checked.claims.tid}/'. It must match the tenant 'https://sts.windows.net/${tenant}/' associated with this subscription.`,
      );
    }
    if (req.method !== 'GET') return answer(405, 'MethodNotAllowed', 'only GET here');
    if (apiVersion !== '2023-07-01')
      return answer(400, 'InvalidApiVersionParameter', `The api-version '${apiVersion}' is invalid.`);
    const reg = arm.registries.get(url.pathname.toLowerCase());
    if (!reg) {
      return answer(
        404,
        'ResourceNotFound',
        `The Resource 'Microsoft.ContainerRegistry/registries/${url.pathname.split('/').pop()}' under resource group was not found.`,
      );
    }
    if (!reg.readers.has(checked.claims.oid)) {
      return answer(
        403,
        'AuthorizationFailed',
        `The client '${checked.claims.oid}' with object id '${checked.claims.oid}' does not have authorization to perform action 'Microsoft.ContainerRegistry/registries/read' over scope '${url.pathname}' or the scope is invalid.`,
      );
    }
    entry.status = 200;
    const name = url.pathname.split('/').pop()!;
    sendJson(res, 200, {
      id: url.pathname,
      name,
      type: 'Microsoft.ContainerRegistry/registries',
      location: 'westeurope',
      sku: { name: 'Premium', tier: 'Premium' },
      properties: {
        loginServer: reg.loginServer,
        provisioningState: 'Succeeded',
        adminUserEnabled: false,
        publicNetworkAccess: reg.publicNetworkAccess ?? 'Enabled',
        networkRuleBypassOptions: reg.networkRuleBypassOptions ?? 'AzureServices',
        networkRuleSet: { defaultAction: reg.defaultAction ?? 'Allow', ipRules: [] },
      },
    });
  });
  return arm;
}
