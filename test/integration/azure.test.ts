/**
 * Entra ID sign-in end to end, with no Azure: the REAL @azure/identity ManagedIdentityCredential gets its
 * tokens from a local App Service managed-identity endpoint (IDENTITY_ENDPOINT + IDENTITY_HEADER); ACR-style
 * /oauth2/exchange and /oauth2/token servers validate those tokens and mint the JWTs of REAL token-auth
 * docker-registries behind them; a local Resource Manager resolves registries given by resource ID. Every
 * import is checked with skopeo, every refusal by its message.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ACR_AUDIENCE,
  registryResourceId,
  startAcr,
  startArm,
  startEntra,
  type AcrRequest,
  type RunningAcr,
  type RunningArm,
  type RunningEntra,
} from '../support/azure.js';
import { runCli, runMain } from '../support/cli.js';
import { buildImage, type BuiltImage } from '../support/fixtures.js';
import { requireRegistryTools } from '../support/registry.js';
import { testService } from '../support/service.js';
import { copyAllToDir, manifestDigest, pushOciLayout } from '../support/skopeo.js';

const hasTools = requireRegistryTools();

const PUSHER = '11111111-1111-4111-8111-111111111111';
const PULL_ONLY = '22222222-2222-4222-8222-222222222222';
const SUBSCRIPTION = '33333333-3333-4333-8333-333333333333';
const OTHER_TENANT = '44444444-4444-4444-8444-444444444444';
const FOREIGN_OID = '55555555-5555-4555-8555-555555555555';

const exchanges = (acr: RunningAcr): AcrRequest[] => acr.requests.filter((r) => r.path === '/oauth2/exchange');
const tokenPosts = (acr: RunningAcr): AcrRequest[] =>
  acr.requests.filter((r) => r.path === '/oauth2/token' && r.method === 'POST');
const keys = (r: AcrRequest): string[] => Object.keys(r.form).sort();

describe.skipIf(!hasTools)('Entra ID sign-in to ACR-style registries (managed identity, exchange, ARM)', () => {
  let entra: RunningEntra;
  let src: RunningAcr;
  let dst: RunningAcr;
  let foreign: RunningAcr;
  /** A registry whose challenge names a service that is not its host name. */
  let fronted: RunningAcr;
  let arm: RunningArm;
  let work: string;
  let image: BuiltImage;
  let srcId: string;
  const pusherOid = randomUUID();
  const pullOnlyOid = randomUUID();
  const saved = { endpoint: process.env.IDENTITY_ENDPOINT, header: process.env.IDENTITY_HEADER };

  const admin = (acr: RunningAcr) => acr.admin;
  const env = (extra: Record<string, string> = {}) => ({
    INSECURE_REGISTRIES: [src, dst, foreign, fronted].map((r) => r.loginServer).join(','),
    CHUNK_SIZE: '64KiB',
    ARM_ENDPOINT: arm.endpoint,
    AZURE_CLIENT_ID: PUSHER,
    ...extra,
  });

  beforeAll(async () => {
    entra = await startEntra({ userAssigned: { [PUSHER]: pusherOid, [PULL_ONLY]: pullOnlyOid } });
    // What App Service and Functions set for an app with a managed identity; @azure/identity reads process.env.
    process.env.IDENTITY_ENDPOINT = entra.endpoint;
    process.env.IDENTITY_HEADER = entra.header;
    [src, dst, foreign, fronted, arm] = await Promise.all([
      startAcr({ entra, roles: { [pusherOid]: ['pull'] } }),
      startAcr({ entra, roles: { [pusherOid]: ['pull', 'push'], [pullOnlyOid]: ['pull'] } }),
      startAcr({ entra, tenant: OTHER_TENANT, roles: { [FOREIGN_OID]: ['pull'] } }),
      startAcr({ entra, roles: { [pusherOid]: ['pull', 'push'] }, service: 'registry.internal.example' }),
      startArm({ entra }),
    ]);
    srcId = registryResourceId(SUBSCRIPTION, 'rg-src', 'srcregistry');
    arm.registries.set(srcId.toLowerCase(), {
      loginServer: src.loginServer,
      readers: new Set([pusherOid, pullOnlyOid]),
    });
    work = await mkdtemp(join(tmpdir(), 'oci-import-azure-'));
    image = await buildImage({
      dir: join(work, 'image'),
      seed: 'azure',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
      layersPerPlatform: 2,
      layerSize: 150_000,
    });
    await pushOciLayout(image.layoutDir, `${src.loginServer}/team/app:1.0`, admin(src));
    await pushOciLayout(image.layoutDir, `${foreign.loginServer}/team/app:1.0`, admin(foreign));
  });

  afterAll(async () => {
    await Promise.all([src?.stop(), dst?.stop(), foreign?.stop(), fronted?.stop(), arm?.stop(), entra?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
    if (saved.endpoint === undefined) delete process.env.IDENTITY_ENDPOINT;
    else process.env.IDENTITY_ENDPOINT = saved.endpoint;
    if (saved.header === undefined) delete process.env.IDENTITY_HEADER;
    else process.env.IDENTITY_HEADER = saved.header;
  });

  it('CLI: pulls a source given by resource ID and pushes with the managed identity, through the exchange', async () => {
    const run = await runCli(
      [
        'import',
        '--registry',
        srcId,
        '--source',
        'team/app:1.0',
        '--target',
        dst.loginServer,
        '--target-auth',
        'managed-identity',
        '--image',
        'mirror/app:1.0',
      ],
      env(),
    );
    expect(run.stderr).not.toContain('failed');
    expect(run.code, run.stderr).toBe(0);
    expect(await manifestDigest(`${dst.loginServer}/mirror/app:1.0`, admin(dst))).toBe(image.digest);
    await copyAllToDir(`${dst.loginServer}/mirror/app:1.0`, join(work, 'out-cli'), admin(dst));

    // The managed-identity endpoint: App Service protocol, the user-assigned client ID, one token per audience (cached).
    expect(entra.requests.length).toBe(2);
    for (const r of entra.requests) {
      expect(r).toMatchObject({ method: 'GET', path: '/msi/token', identityHeader: entra.header, status: 200 });
      expect(r.query).toMatchObject({ 'api-version': '2019-08-01', client_id: PUSHER });
    }
    expect(entra.requests.map((r) => r.query.resource).sort()).toEqual([ACR_AUDIENCE, arm.audience].sort());

    // Resource Manager: one GET of the resource, api-version 2023-07-01, a token for its audience.
    expect(arm.requests).toEqual([
      { path: srcId, apiVersion: '2023-07-01', audience: arm.audience, objectId: pusherOid, status: 200 },
    ]);

    for (const [acr, scope] of [
      [dst, /^repository:mirror\/app:(pull|pull,push)$/],
      [src, /^repository:team\/app:pull$/],
    ] as const) {
      // One exchange: exactly grant_type, service, access_token — an ACR-audience token of the identity.
      const [exchange, ...more] = exchanges(acr);
      expect(more).toEqual([]);
      expect(keys(exchange!)).toEqual(['access_token', 'grant_type', 'service']);
      expect(exchange!.form.grant_type).toEqual(['access_token']);
      expect(exchange!.form.service).toEqual([acr.loginServer]);
      const entraToken = entra.verify(exchange!.form.access_token![0]!);
      expect(entraToken.ok && entraToken.claims).toMatchObject({
        aud: ACR_AUDIENCE,
        oid: pusherOid,
        tid: entra.tenant,
      });
      expect(exchange!.status).toBe(200);

      // Token requests: grant_type, service, scope (per resource), refresh_token; each scope set asked once.
      const tokens = tokenPosts(acr);
      expect(tokens.length).toBeGreaterThan(0);
      for (const t of tokens) {
        expect(keys(t)).toEqual(['grant_type', 'refresh_token', 'scope', 'service']);
        expect(t.form.grant_type).toEqual(['refresh_token']);
        expect(t.form.service).toEqual([acr.loginServer]);
        expect(t.form.refresh_token).toHaveLength(1);
        for (const s of t.form.scope!) expect(s).toMatch(scope);
        expect(t.status).toBe(200);
      }
      const sets = tokens.map((t) => [...t.form.scope!].sort().join(' '));
      expect(new Set(sets).size).toBe(sets.length);
      // Many registry requests, few token requests: cached per scope.
      expect(acr.proxied).toBeGreaterThan(tokens.length * 3);
    }
    expect(run.stdout + run.stderr).not.toMatch(/eyJ[\w-]{20,}/);
  });

  it('service: an HTTP request naming the registry by resource ID is resolved, queued and imported', async () => {
    const t = testService(
      env({
        TARGET_REGISTRY: dst.loginServer,
        TARGET_AUTH: 'managed-identity',
        ALLOWED_SOURCES: src.loginServer,
        STEP_BUDGET_SECONDS: '5',
      }),
    );
    const job = await t.service.submit({ source: 'team/app:1.0', registry: srcId, images: ['svc/app:1.0'] }, 'http');
    expect(job.request).toMatchObject({ source: `${src.loginServer}/team/app:1.0`, registryResourceId: srcId });
    for (let i = 0; i < 200; i++) {
      const batch = t.queue.drain();
      if (batch.length === 0) break;
      for (const m of batch) await t.service.handleMessage(m, t.meta());
    }
    const status = await t.service.status(job.id);
    expect(status, JSON.stringify(status)).toMatchObject({ status: 'succeeded', digest: image.digest });
    expect(await manifestDigest(`${dst.loginServer}/svc/app:1.0`, admin(dst))).toBe(image.digest);
    expect(JSON.stringify([status, t.logs])).not.toMatch(/eyJ[\w-]{20,}/);
  });

  it('managed identity: a target whose /v2/ challenge names a service other than its host name', async () => {
    expect(fronted.service).not.toBe(fronted.loginServer);
    const run = await runCli(
      [
        'import',
        '--registry',
        srcId,
        '--source',
        'team/app:1.0',
        '--target',
        fronted.loginServer,
        '--target-auth',
        'managed-identity',
        '--image',
        'front/app:1.0',
      ],
      env(),
    );
    expect(run.code, run.stderr).toBe(0);
    expect(await manifestDigest(`${fronted.loginServer}/front/app:1.0`, admin(fronted))).toBe(image.digest);
    // The exchange and every token request name the challenge's service, not the host: the stand-in refuses
    // anything else with 401, as ACR refuses a service that is not its own.
    const [exchange, ...more] = exchanges(fronted);
    expect(more).toEqual([]);
    expect(exchange).toMatchObject({
      status: 200,
      form: { grant_type: ['access_token'], service: ['registry.internal.example'] },
    });
    const tokens = tokenPosts(fronted);
    expect(tokens.length).toBeGreaterThan(0);
    for (const t of tokens) expect(t).toMatchObject({ status: 200, form: { service: ['registry.internal.example'] } });
  });

  it('a revoked refresh token: /oauth2/token answers 401, one new exchange, the import goes on', async () => {
    const exchangesBefore = exchanges(dst).length;
    dst.revokeRefreshTokens();
    // In-process whatever OCI_IMPORT_TEST_CLI says: the revoked token is the one this process cached on an earlier
    // import (a long-lived process, as the service's workers are); a new CLI process holds none.
    const run = await runMain(
      [
        'import',
        '--registry',
        srcId,
        '--source',
        'team/app:1.0',
        '--target',
        dst.loginServer,
        '--target-auth',
        'managed-identity',
        '--image',
        'refreshed/app:1.0',
      ],
      env(),
    );
    expect(run.code, run.stderr).toBe(0);
    expect(await manifestDigest(`${dst.loginServer}/refreshed/app:1.0`, admin(dst))).toBe(image.digest);
    expect(exchanges(dst).length).toBe(exchangesBefore + 1);
    const refused = tokenPosts(dst).filter((t) => t.status === 401);
    expect(refused.map((t) => t.reason)).toEqual(['refresh token revoked']);
  });

  it('CLI: a password alone is an Entra ID token of another tenant, exchanged at that registry', async () => {
    const token = entra.mint({ tenant: OTHER_TENANT, objectId: FOREIGN_OID, audience: ACR_AUDIENCE });
    const run = await runCli(
      [
        'import',
        '--source',
        `${foreign.loginServer}/team/app:1.0`,
        '--password',
        token,
        '--target',
        dst.loginServer,
        '--target-auth',
        'managed-identity',
        '--image',
        'crosstenant/app:1.0',
      ],
      env(),
    );
    expect(run.code, run.stderr).toBe(0);
    expect(await manifestDigest(`${foreign.loginServer}/team/app:1.0`, admin(foreign))).toBe(image.digest);
    expect(await manifestDigest(`${dst.loginServer}/crosstenant/app:1.0`, admin(dst))).toBe(image.digest);
    const [exchange] = exchanges(foreign);
    expect(exchange!.form).toEqual({
      grant_type: ['access_token'],
      service: [foreign.loginServer],
      access_token: [token],
    });
    expect(run.stdout + run.stderr).not.toContain(token);
  });

  describe('refusals a person can act on', () => {
    it('the identity lacks push rights on the target', async () => {
      const run = await runCli(
        [
          'import',
          '--source',
          `${src.loginServer}/team/app:1.0`,
          '--username',
          'admin',
          '--password',
          src.admin.password,
          '--target',
          dst.loginServer,
          '--target-auth',
          'managed-identity',
          '--image',
          'denied/app:1.0',
        ],
        env({ AZURE_CLIENT_ID: PULL_ONLY }),
      );
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('[ACCESS_DENIED]');
      expect(run.stderr).toContain(
        `The app's managed identity (client ID ${PULL_ONLY}) lacks push rights on registry ${dst.loginServer} (repository denied/app): assign it the AcrPush role on the registry`,
      );
      expect(run.stderr).not.toContain(src.admin.password);
    });

    it('the identity lacks pull rights on a source given by resource ID', async () => {
      const run = await runCli(
        [
          'import',
          '--registry',
          srcId,
          '--source',
          'team/app:1.0',
          '--target',
          dst.loginServer,
          '--target-auth',
          'managed-identity',
          '--image',
          'denied/app:1.0',
        ],
        env({ AZURE_CLIENT_ID: PULL_ONLY }),
      );
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('[ACCESS_DENIED]');
      expect(run.stderr).toContain(
        `The app's managed identity (client ID ${PULL_ONLY}) lacks pull rights on registry ${src.loginServer} (repository team/app): assign it the AcrPull role on the registry`,
      );
    });

    describe('with the source registry behind its firewall', () => {
      beforeAll(() => {
        src.firewall = true;
        foreign.firewall = true;
      });
      afterAll(() => {
        src.firewall = false;
        foreign.firewall = false;
      });

      it('public access disabled and the source given by login server', async () => {
        const run = await runCli(
          [
            'import',
            '--source',
            `${src.loginServer}/team/app:1.0`,
            '--username',
            'admin',
            '--password',
            src.admin.password,
            '--target',
            dst.loginServer,
            '--target-auth',
            'managed-identity',
          ],
          env(),
        );
        expect(run.code).toBe(1);
        expect(run.stderr).toContain('[PUBLIC_ACCESS_DISABLED]');
        expect(run.stderr).toContain(
          `source registry ${src.loginServer} has public network access disabled (it refused this app's network address): give the registry by its ARM resource ID`,
        );
      });

      it('a network-restricted registry given by resource ID must allow trusted services', async () => {
        const run = await runCli(
          [
            'import',
            '--registry',
            srcId,
            '--source',
            'team/app:1.0',
            '--target',
            dst.loginServer,
            '--target-auth',
            'managed-identity',
          ],
          env(),
        );
        expect(run.code).toBe(1);
        expect(run.stderr).toContain('[NETWORK_RESTRICTED]');
        expect(run.stderr).toContain(
          `registry ${src.loginServer} is network-restricted and refused this app's network address: a network-restricted registry must allow trusted services (az acr update --name 127 --allow-trusted-services true)`,
        );
      });

      it('cross-tenant import from a registry with public access disabled', async () => {
        const token = entra.mint({ tenant: OTHER_TENANT, objectId: FOREIGN_OID, audience: ACR_AUDIENCE });
        const run = await runCli(
          [
            'import',
            '--source',
            `${foreign.loginServer}/team/app:1.0`,
            '--password',
            token,
            '--target',
            dst.loginServer,
            '--target-auth',
            'managed-identity',
          ],
          env(),
        );
        expect(run.code).toBe(1);
        expect(run.stderr).toContain('[CROSS_TENANT_NOT_SUPPORTED]');
        expect(run.stderr).toContain(
          'cross-tenant import from a registry with public access disabled is not supported',
        );
        expect(run.stderr).not.toContain(token);
      });
    });

    it('a resource ID of a registry the identity may not read, or that does not exist', async () => {
      const t = testService(
        env({ TARGET_REGISTRY: dst.loginServer, TARGET_AUTH: 'managed-identity', ALLOWED_SOURCES: src.loginServer }),
      );
      const hidden = registryResourceId(SUBSCRIPTION, 'rg-src', 'hiddenregistry');
      arm.registries.set(hidden.toLowerCase(), { loginServer: src.loginServer, readers: new Set() });
      await expect(t.service.submit({ source: 'team/app:1.0', registry: hidden }, 'http')).rejects.toMatchObject({
        status: 400,
        code: 'REGISTRY_RESOURCE_FORBIDDEN',
        target: 'registry',
        message: expect.stringContaining(
          `the app's managed identity (client ID ${PUSHER}) may not read registry ${hidden} (Azure Resource Manager answered 403 AuthorizationFailed`,
        ),
      });
      const missing = registryResourceId(SUBSCRIPTION, 'rg-src', 'nosuchregistry');
      await expect(t.service.submit({ source: 'team/app:1.0', registry: missing }, 'http')).rejects.toMatchObject({
        status: 400,
        code: 'REGISTRY_RESOURCE_NOT_FOUND',
        target: 'registry',
        message: expect.stringContaining(`registry ${missing} was not found`),
      });
    });

    it('cross-tenant with a registry whose public access ARM reports disabled is refused at once', async () => {
      const t = testService(
        env({
          TARGET_REGISTRY: dst.loginServer,
          TARGET_AUTH: 'managed-identity',
          ALLOWED_SOURCES: foreign.loginServer,
          CREDENTIAL_KEY: Buffer.alloc(32, 7).toString('base64'),
        }),
      );
      const closed = registryResourceId(SUBSCRIPTION, 'rg-src', 'closedregistry');
      arm.registries.set(closed.toLowerCase(), {
        loginServer: foreign.loginServer,
        publicNetworkAccess: 'Disabled',
        readers: new Set([pusherOid]),
      });
      const token = entra.mint({ tenant: OTHER_TENANT, objectId: FOREIGN_OID, audience: ACR_AUDIENCE });
      const refused = t.service.submit({ source: 'team/app:1.0', registry: closed, password: token }, 'http');
      await expect(refused).rejects.toMatchObject({
        status: 400,
        code: 'CROSS_TENANT_NOT_SUPPORTED',
        target: 'registry',
      });
      await expect(refused).rejects.toThrow(
        /^cross-tenant import from a registry with public access disabled is not supported/,
      );
    });
  });
});
