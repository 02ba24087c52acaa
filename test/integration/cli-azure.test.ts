/**
 * The installed command (`node bin/oci-import.js`, a child process) signing in to an ACR-style target with
 * `--target-auth azure`: DefaultAzureCredential, then the registry's token exchange — once from `az login` (a
 * stand-in `az` on PATH, the chain narrowed to it with AZURE_TOKEN_CREDENTIALS), once from a managed identity
 * (the App Service protocol on loopback, the chain narrowed to its production credentials). Real
 * docker-registry behind the exchange; results checked with skopeo. Nothing reaches 169.254.169.254.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installAz, type AzStandIn } from '../support/az-standin.js';
import { ACR_AUDIENCE, startAcr, startEntra, type RunningAcr, type RunningEntra } from '../support/azure.js';
import { runBin } from '../support/cli.js';
import { buildImage, type BuiltImage } from '../support/fixtures.js';
import { requireRegistryTools, startRegistry, type RunningRegistry } from '../support/registry.js';
import { manifestDigest, pushOciLayout } from '../support/skopeo.js';

const hasTools = requireRegistryTools();
const USER_OID = '6a0e2b7c-1d2f-4e3a-9b8c-7d6e5f4a3b2c';

describe.skipIf(!hasTools)('oci-import import --target-auth azure (installed command)', () => {
  let work: string;
  let plain: RunningRegistry;
  let entra: RunningEntra;
  let acr: RunningAcr;
  let az: AzStandIn;
  let image: BuiltImage;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'oci-import-cli-azure-'));
    entra = await startEntra();
    [plain, acr, az] = await Promise.all([
      startRegistry(),
      startAcr({ entra, roles: { [USER_OID]: ['pull', 'push'], [entra.systemObjectId]: ['pull', 'push'] } }),
      installAz(join(work, 'az')),
    ]);
    image = await buildImage({
      dir: join(work, 'image'),
      seed: 'cli-azure',
      platforms: [{ os: 'linux', architecture: 'amd64' }],
      layerSize: 30_000,
    });
    await pushOciLayout(image.layoutDir, `${plain.host}/team/app:1`);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([plain?.stop(), acr?.stop(), entra?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  const importTo = (image: string, env: Record<string, string>) =>
    runBin(
      [
        'import',
        '--source',
        `${plain.host}/team/app:1`,
        '--target',
        acr.loginServer,
        '--image',
        image,
        '--target-auth',
        'azure',
      ],
      { INSECURE_REGISTRIES: `${plain.host},${acr.loginServer}`, HOME: work, ...env },
    );

  it("from az login: one token for the registry's audience, exchanged at the registry; the image arrives", async () => {
    await az.login(ACR_AUDIENCE, entra.mint({ tenant: entra.tenant, objectId: USER_OID, audience: ACR_AUDIENCE }));
    const before = acr.requests.length;
    const run = await importTo('mirror/az:1', { PATH: az.path, AZURE_TOKEN_CREDENTIALS: 'AzureCliCredential' });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`digest ${image.digest}`);
    expect(await manifestDigest(`${acr.loginServer}/mirror/az:1`, acr.admin)).toBe(image.digest);
    expect(await az.calls()).toEqual([['account', 'get-access-token', '--output', 'json', '--resource', ACR_AUDIENCE]]);
    expect(
      acr.requests
        .slice(before)
        .filter((r) => r.path === '/oauth2/exchange')
        .map((r) => r.status),
    ).toEqual([200]);
    expect(entra.requests).toEqual([]); // no managed-identity request
  });

  it('from a managed identity (IDENTITY_ENDPOINT on loopback, AZURE_TOKEN_CREDENTIALS=prod)', async () => {
    const run = await importTo('mirror/mi:1', {
      PATH: az.path,
      AZURE_TOKEN_CREDENTIALS: 'prod',
      IDENTITY_ENDPOINT: entra.endpoint,
      IDENTITY_HEADER: entra.header,
    });
    expect(run.code, run.stderr).toBe(0);
    expect(await manifestDigest(`${acr.loginServer}/mirror/mi:1`, acr.admin)).toBe(image.digest);
    expect(entra.requests.map((r) => `${r.status} ${r.query.resource}`)).toEqual([`200 ${ACR_AUDIENCE}`]);
  });

  it('signed in nowhere: exit 1, naming DefaultAzureCredential and az login', async () => {
    await az.logout();
    const run = await importTo('mirror/none:1', { PATH: az.path, AZURE_TOKEN_CREDENTIALS: 'AzureCliCredential' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('DefaultAzureCredential');
    expect(run.stderr).toMatch(/az login/);
  });
});
