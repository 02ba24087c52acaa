/**
 * GET /api/openapi.json against the handlers it describes:
 * - the document is valid OpenAPI 3.1 (@seriousme/openapi-schema-validator, the official schemas);
 * - every answer of every case below is validated against the documented response (status, body schema with
 *   its error-code enum, required headers; Ajv on the document's own JSON Schema 2020-12) — a code the
 *   handlers produce but the document does not list fails here;
 * - and the last test fails when a documented (operation, status, code) was produced by no case. Responses the
 *   Functions host gives before any handler (`x-produced-by: host`: 401, 403) are produced against the real
 *   local host in test/e2e/operate.test.ts.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cancelImport } from '../../../functions/import-cancel.js';
import { listImports } from '../../../functions/import-list.js';
import { createImport, getImport } from '../../../functions/imports.js';
import { openApi } from '../../../functions/openapi.js';
import { statusPageHandler } from '../../../functions/status-page.js';
import { latestSync } from '../../../functions/sync.js';
import { loadConfig } from '../../../lib/config.js';
import { MemoryDocuments, type WriteCondition } from '../../../lib/store/documents.js';
import { setImportService } from '../../../lib/service/runtime.js';
import { SyncService } from '../../../lib/service/sync-service.js';
import { startEntra, type RunningEntra } from '../../support/azure.js';
import { testService, type TestService, type TestServiceOptions } from '../../support/service.js';
import { ctx, request } from '../../support/functions-http.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Handler = (r: HttpRequest, c: InvocationContext) => Promise<HttpResponseInit>;

const KEY = Buffer.alloc(32, 5).toString('base64');
const SUB =
  '/subscriptions/33333333-3333-4333-8333-333333333333/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/';

const postJson = (body: unknown, headers: Record<string, string> = {}): HttpRequest =>
  request('POST', 'imports', {
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json', ...headers },
  });

interface Case {
  readonly name: string;
  readonly op: string;
  readonly status: number;
  readonly code?: string;
  /** A fresh service with these settings (and options) instead of the default one. */
  readonly env?: Record<string, string>;
  readonly options?: TestServiceOptions;
  /** No service at all: built from process.env with these variables (Key Vault references). */
  readonly processEnv?: Record<string, string>;
  run(t: TestService): Promise<HttpResponseInit>;
}

/** A Resource Manager that answers by registry name, for the codes of `registry` given by resource ID. */
function startArm(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const name = /registries\/([^/?]+)/.exec(req.url ?? '')?.[1] ?? '';
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (name === 'missing') send(404, { error: { code: 'ResourceNotFound', message: 'not found' } });
    else if (name === 'hidden') send(403, { error: { code: 'AuthorizationFailed', message: 'no' } });
    else if (name === 'foreign')
      send(401, { error: { code: 'InvalidAuthenticationTokenTenant', message: 'wrong tenant' } });
    else if (name === 'oddity') send(200, { properties: {} });
    else send(200, { properties: { loginServer: 'closed.azurecr.io', publicNetworkAccess: 'Disabled' } });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }),
    ),
  );
}

/** Memory storage on which no repeatability record can ever be created (three lost races in a row). */
class BusyDocuments extends MemoryDocuments {
  override async put(
    path: string,
    value: unknown,
    condition?: WriteCondition,
    metadata?: Record<string, string>,
  ): Promise<string | undefined> {
    return path.startsWith('repeat/') ? undefined : super.put(path, value, condition, metadata);
  }
}

const DEFAULT_ENV = {
  TARGET_REGISTRY: 'r.example',
  CREDENTIAL_KEY: KEY,
  TARGET_REPOSITORIES: 'nginx,mirror/*',
  REGISTRY_CREDENTIALS__hub__USERNAME: 'u',
  REGISTRY_CREDENTIALS__hub__PASSWORD: 'p',
  REGISTRY_CREDENTIALS__hub__REGISTRIES: 'docker.io',
};
const NGINX = { source: 'docker.io/library/nginx:1.27', images: ['nginx:1.27'] };
const KV = { ALLOWED_SOURCES: '@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/x/)' };
const post = (body: unknown, headers?: Record<string, string>) => () => createImport(postJson(body, headers), ctx());

/** Each case produces one documented answer. */
function cases(arm: () => string): Case[] {
  const bad = (code: string, body: unknown, o: Partial<Case> = {}): Case => ({
    name: `400 ${code}`,
    op: 'createImport',
    status: 400,
    code,
    run: post(body),
    ...o,
  });
  const withArm = (): Record<string, string> => ({ ...DEFAULT_ENV, ARM_ENDPOINT: arm() });
  const id = async (t: TestService, body: unknown = NGINX) => (await t.service.submit(body, 'http')).id;
  const call = (
    h: Handler,
    method: string,
    path: string,
    params: Record<string, string> = {},
    headers: Record<string, string> = {},
  ) => h(request(method, path, { params, headers }), ctx());
  return [
    { name: 'created', op: 'createImport', status: 202, run: post(NGINX) },
    {
      name: 'repeated',
      op: 'createImport',
      status: 202,
      run: async () => {
        await post(NGINX, { 'repeatability-request-id': 'r1' })();
        return post(NGINX, { 'repeatability-request-id': 'r1' })();
      },
    },
    bad('INVALID_JSON', '{"source": '),
    bad('INVALID_BODY', '[]'),
    bad('MISSING_FIELD', {}),
    bad('INVALID_TYPE', { source: 1 }),
    bad('INVALID_FIELD', { source: '' }),
    bad('UNKNOWN_FIELD', { ...NGINX, imgaes: [] }),
    bad('INVALID_REFERENCE', { source: 'Nginx:1' }),
    bad('INVALID_PLATFORM', { ...NGINX, platforms: ['linux'] }),
    bad('SOURCE_NOT_ALLOWED', NGINX, { env: { ...DEFAULT_ENV, ALLOWED_SOURCES: 'ghcr.io' } }),
    bad('PRIVATE_ADDRESS', { source: '169.254.169.254/x:1', images: ['nginx:1'] }),
    bad('UNKNOWN_CREDENTIAL', { ...NGINX, credential: 'nope' }),
    bad('CREDENTIAL_NOT_ALLOWED', { source: 'ghcr.io/o/nginx:1', images: ['nginx:1'], credential: 'hub' }),
    bad(
      'CREDENTIALS_NOT_ACCEPTED',
      { ...NGINX, username: 'u', password: 'p' },
      { env: { TARGET_REGISTRY: 'r.example' } },
    ),
    bad('CONFLICTING_FIELDS', { ...NGINX, password: 'p', credential: 'hub' }),
    bad('TARGET_NOT_ALLOWED', { ...NGINX, target: 'other.example' }),
    bad('REPOSITORY_NOT_ALLOWED', { ...NGINX, images: ['other:1'] }),
    bad('SOURCE_UNRESOLVABLE', NGINX, {
      options: {
        lookup: async () => {
          throw Object.assign(new Error('no such host'), { code: 'ENOTFOUND' });
        },
      },
    }),
    { ...bad('INVALID_HEADER', NGINX), run: post(NGINX, { 'repeatability-request-id': 'has space' }) },
    bad('INVALID_RESOURCE_ID', {
      source: 'nginx:1',
      registry: '/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/s',
    }),
    ...(
      [
        'missing:REGISTRY_RESOURCE_NOT_FOUND',
        'hidden:REGISTRY_RESOURCE_FORBIDDEN',
        'foreign:ARM_UNAUTHORIZED',
        'oddity:AZURE_AUTH_FAILED',
      ] as const
    ).map((s) => {
      const [name, code] = s.split(':') as [string, string];
      return { ...bad(code, { source: 'nginx:1', registry: `${SUB}${name}` }), lazyEnv: withArm } as Case;
    }),
    {
      ...bad('CROSS_TENANT_NOT_SUPPORTED', { source: 'nginx:1', registry: `${SUB}closed`, password: 'a.b.c' }),
      lazyEnv: withArm,
    } as Case,
    {
      name: '409 REPEATABILITY_CONFLICT',
      op: 'createImport',
      status: 409,
      code: 'REPEATABILITY_CONFLICT',
      run: async () => {
        await post(NGINX, { 'repeatability-request-id': 'r2' })();
        return post({ ...NGINX, force: true }, { 'repeatability-request-id': 'r2' })();
      },
    },
    {
      name: '412',
      op: 'createImport',
      status: 412,
      code: 'REPEATABILITY_EXPIRED',
      run: post(NGINX, {
        'repeatability-request-id': 'r3',
        'repeatability-first-sent': new Date(Date.now() - 25 * 3_600_000).toUTCString(),
      }),
    },
    {
      name: '413',
      op: 'createImport',
      status: 413,
      code: 'BODY_TOO_LARGE',
      run: post({ ...NGINX, registry: 'x'.repeat(70_000) }),
    },
    {
      name: '415',
      op: 'createImport',
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
      run: () =>
        createImport(request('POST', 'imports', { body: '{}', headers: { 'content-type': 'text/plain' } }), ctx()),
    },
    { name: '503 target', op: 'createImport', status: 503, code: 'TARGET_REGISTRY_NOT_SET', env: {}, run: post(NGINX) },
    {
      name: '503 message key',
      op: 'createImport',
      status: 503,
      code: 'MESSAGE_KEY_NOT_SET',
      env: { ...DEFAULT_ENV, MESSAGE_KEY: '' },
      run: post(NGINX),
    },
    {
      name: '503 message key list',
      op: 'listImports',
      status: 503,
      code: 'MESSAGE_KEY_NOT_SET',
      env: { ...DEFAULT_ENV, MESSAGE_KEY: '' },
      run: () => call(listImports, 'GET', 'imports'),
    },
    // 30,000 nested arrays with Repeatability-Request-ID: a stack overflow (an empty 500) before the depth bound
    {
      ...bad('JSON_TOO_DEEP', ''),
      run: post(`{"source":"docker.io/library/nginx:1","images":${'['.repeat(30_000)}${']'.repeat(30_000)}}`, {
        'repeatability-request-id': 'deep',
      }),
    },
    {
      name: '503 dns',
      op: 'createImport',
      status: 503,
      code: 'SOURCE_UNRESOLVABLE',
      options: {
        lookup: async () => {
          throw Object.assign(new Error('try again'), { code: 'EAI_AGAIN' });
        },
      },
      run: post(NGINX),
    },
    {
      name: '503 busy',
      op: 'createImport',
      status: 503,
      code: 'REPEATABILITY_BUSY',
      options: { docs: new BusyDocuments() },
      run: post(NGINX, { 'repeatability-request-id': 'r4' }),
    },
    ...['createImport', 'getImport', 'listImports', 'cancelImport', 'latestSync'].map((op): Case => ({
      name: `503 key vault ${op}`,
      op,
      status: 503,
      code: 'KEY_VAULT_REFERENCE_UNRESOLVED',
      processEnv: { ...DEFAULT_ENV, ...KV },
      run: () =>
        op === 'createImport'
          ? post(NGINX)()
          : op === 'getImport'
            ? call(getImport, 'GET', 'imports/x', { id: '00000000-0000-4000-8000-000000000000' })
            : op === 'listImports'
              ? call(listImports, 'GET', 'imports')
              : op === 'latestSync'
                ? call(latestSync, 'GET', 'syncs/latest')
                : call(cancelImport, 'POST', 'imports/x/cancel', { id: '00000000-0000-4000-8000-000000000000' }),
    })),
    {
      name: 'get',
      op: 'getImport',
      status: 200,
      run: async (t) => {
        const i = await id(t);
        return call(getImport, 'GET', `imports/${i}`, { id: i });
      },
    },
    {
      name: 'get bad id',
      op: 'getImport',
      status: 404,
      code: 'NOT_FOUND',
      run: () => call(getImport, 'GET', 'imports/nope', { id: 'nope' }),
    },
    {
      name: 'get expired',
      op: 'getImport',
      status: 404,
      code: 'IMPORT_EXPIRED',
      run: async (t) => {
        const i = await id(t);
        await t.service.cancel(i);
        // retention run 31 days on: the ended import is deleted, its tombstone kept
        await t.service.prune(new Date(Date.now() + 31 * 86_400_000));
        return call(getImport, 'GET', `imports/${i}`, { id: i });
      },
    },
    {
      name: 'list',
      op: 'listImports',
      status: 200,
      run: async (t) => {
        for (let i = 0; i < 3; i++) await id(t);
        return listImports(request('GET', 'imports?limit=2&status=queued'), ctx());
      },
    },
    ...['limit=0', 'limit=x', 'status=done', 'continuationToken=bm9wZQ'].map((q): Case => ({
      name: `list ${q}`,
      op: 'listImports',
      status: 400,
      code: 'INVALID_QUERY',
      run: () => listImports(request('GET', `imports?${q}`), ctx()),
    })),
    {
      name: 'cancel',
      op: 'cancelImport',
      status: 202,
      run: async (t) => {
        const i = await id(t);
        return call(cancelImport, 'POST', `imports/${i}/cancel`, { id: i });
      },
    },
    {
      name: 'cancel unknown',
      op: 'cancelImport',
      status: 404,
      code: 'NOT_FOUND',
      run: () => call(cancelImport, 'POST', 'imports/x/cancel', { id: '00000000-0000-4000-8000-000000000000' }),
    },
    {
      name: 'cancel ended',
      op: 'cancelImport',
      status: 409,
      code: 'IMPORT_ENDED',
      run: async (t) => {
        const i = await id(t);
        await t.service.cancel(i);
        return call(cancelImport, 'POST', `imports/${i}/cancel`, { id: i });
      },
    },
    {
      name: 'cancel finalizing',
      op: 'cancelImport',
      status: 409,
      code: 'IMPORT_FINALIZING',
      run: async (t) => {
        const i = await id(t);
        await t.store.update(i, (j) => ({ ...j, status: 'running', finalizing: true }));
        return call(cancelImport, 'POST', `imports/${i}/cancel`, { id: i });
      },
    },
    {
      name: 'cancel repeatable',
      op: 'cancelImport',
      status: 501,
      code: 'NOT_IMPLEMENTED',
      run: async (t) => {
        const i = await id(t);
        return call(cancelImport, 'POST', `imports/${i}/cancel`, { id: i }, { 'repeatability-request-id': 'c1' });
      },
    },
    {
      name: 'sync none',
      op: 'latestSync',
      status: 404,
      code: 'NO_SYNC_YET',
      run: () => call(latestSync, 'GET', 'syncs/latest'),
    },
    {
      name: 'sync',
      op: 'latestSync',
      status: 200,
      run: async (t) => {
        const report = {
          startedAt: new Date().toISOString(),
          finishedAt: new Date().toISOString(),
          rules: 1,
          tagsSeen: 2,
          enqueued: [],
          skipped: [],
          inProgress: [],
          errors: [],
        };
        await t.docs.put('sync/latest.json', report);
        setImportService(t.service, new SyncService(t.service, t.docs, loadConfig(t.env), 'r.example'));
        return call(latestSync, 'GET', 'syncs/latest');
      },
    },
    { name: 'openapi', op: 'openApi', status: 200, run: () => call(openApi, 'GET', 'openapi.json') },
    { name: 'ui', op: 'statusPage', status: 200, run: () => call(statusPageHandler, 'GET', 'ui') },
  ];
}

/** Operation id → [path, method, operation] of the document. */
function operations(doc: Json): Map<string, { path: string; method: string; op: Json }> {
  const out = new Map<string, { path: string; method: string; op: Json }>();
  for (const [path, item] of Object.entries(doc.paths as Json)) {
    for (const [method, op] of Object.entries(item as Json))
      out.set((op as Json).operationId, { path, method, op: op as Json });
  }
  return out;
}

const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

describe('GET /api/openapi.json describes the handlers', () => {
  let doc: Json;
  let ajv: Ajv2020;
  let entra: RunningEntra;
  let arm: { server: Server; url: string };
  const covered = new Set<string>();
  const saved = { ...process.env };

  beforeAll(async () => {
    [entra, arm] = await Promise.all([startEntra(), startArm()]);
    process.env.IDENTITY_ENDPOINT = entra.endpoint;
    process.env.IDENTITY_HEADER = entra.header;
    doc = (await openApi(request('GET', 'openapi.json'), ctx())).jsonBody as Json;
    ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    ajv.addSchema(doc, 'openapi');
  });
  afterAll(async () => {
    setImportService(undefined);
    process.env = saved;
    await Promise.all([entra?.stop(), new Promise((r) => arm?.server.close(r))]);
  });

  it('is a valid OpenAPI 3.1 document, its server the API as the caller reached it', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result, JSON.stringify(result.errors, null, 2)).toEqual({ valid: true });
    expect(validator.version).toBe('3.1');
    expect(doc.servers).toEqual([{ url: 'http://127.0.0.1:7071/api' }]);
  });

  it.each(cases(() => arm.url).map((c) => [c.name, c] as const))(
    '%s: the answer is documented and matches its schema',
    async (_name, c) => {
      const lazy = (c as Case & { lazyEnv?: () => Record<string, string> }).lazyEnv;
      if (c.processEnv) {
        setImportService(undefined);
        process.env = { ...saved, IDENTITY_ENDPOINT: entra.endpoint, IDENTITY_HEADER: entra.header, ...c.processEnv };
      }
      const t = testService(lazy?.() ?? c.env ?? DEFAULT_ENV, c.options);
      if (!c.processEnv) setImportService(t.service);
      let res: HttpResponseInit;
      try {
        res = await c.run(t);
      } finally {
        if (c.processEnv) process.env = { ...saved, IDENTITY_ENDPOINT: entra.endpoint, IDENTITY_HEADER: entra.header };
        setImportService(undefined);
      }
      const found = operations(doc).get(c.op)!;
      const status = res.status ?? 200;
      const documented = found.op.responses[String(status)] as Json | undefined;
      expect(
        documented,
        `${c.op} answered ${status}, which is not documented: ${JSON.stringify(res.jsonBody)}`,
      ).toBeDefined();
      expect(res.status).toBe(c.status);
      const headers = new Headers(res.headers as Record<string, string>);
      for (const [name, spec] of Object.entries((documented!.headers ?? {}) as Json)) {
        const value = headers.get(name);
        if ((spec as Json).required) expect(value, `header ${name}`).not.toBeNull();
        if (value !== null) {
          const check = ajv.compile({
            $ref: `openapi#/${pointer('paths', found.path, found.method, 'responses', String(res.status), 'headers', name, 'schema')}`,
          });
          expect(
            check((spec as Json).schema.type === 'integer' ? Number(value) : value),
            `${name}: ${value} ${ajv.errorsText(check.errors)}`,
          ).toBe(true);
        }
      }
      const [type, media] = Object.entries((documented!.content ?? {}) as Json)[0] ?? [];
      if (type === 'application/json') {
        const check = ajv.compile({
          $ref: `openapi#/${pointer('paths', found.path, found.method, 'responses', String(res.status), 'content', type, 'schema')}`,
        });
        expect(check(res.jsonBody), `${JSON.stringify(res.jsonBody)}: ${ajv.errorsText(check.errors)}`).toBe(true);
      } else if (type) {
        expect(headers.get('content-type')).toContain(type);
        expect(typeof res.body).toBe('string');
        expect(media).toBeDefined();
      }
      const code = status >= 400 ? ((res.jsonBody as Json | undefined)?.error?.code as string | undefined) : undefined;
      expect(code).toBe(c.code);
      if (code) expect(headers.get('x-ms-error-code')).toBe(code);
      covered.add(`${c.op} ${res.status}${code ? ` ${code}` : ''}`);
    },
  );

  it('every documented answer the app gives was produced above', () => {
    const documented: string[] = [];
    for (const [id, { op }] of operations(doc)) {
      for (const [status, response] of Object.entries(op.responses as Json)) {
        if (status === 'default' || (response as Json)['x-produced-by'] === 'host') continue;
        const codes = (response as Json).headers?.['x-ms-error-code']?.schema?.enum as string[] | undefined;
        for (const code of codes ?? [undefined]) documented.push(`${id} ${status}${code ? ` ${code}` : ''}`);
      }
    }
    expect(documented.length).toBeGreaterThan(40);
    expect(documented.filter((d) => !covered.has(d))).toEqual([]);
  });
});
