/**
 * The azd `postprovision` hook (scripts/azd/keyvault-references.mjs), run as azd runs it (a child process, `node
 * scripts/azd/keyvault-references.mjs`), against a local stand-in of the Resource Manager endpoints it calls:
 * `az` on the hook's PATH is a small script that forwards `az rest` (and `az functionapp config appsettings set`)
 * to an HTTP server on 127.0.0.1 playing Resource Manager, as `az rest` puts the cloud's Resource Manager in front
 * of a resource ID. Never real Azure.
 *
 * The stand-in behaves as Microsoft's page describes the platform ("Use Key Vault references as app settings",
 * Understand rotation): a reference that failed keeps its status until a refresh call or a configuration change
 * makes the platform fetch it again (or 24 hours pass, which no test waits for).
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../host/host-process.js';

const HOOK = join(PROJECT_ROOT, 'scripts', 'azd', 'keyvault-references.mjs');
const APP_ID =
  '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Web/sites/func-x';

/** `az`: account show, rest (to the stand-in), functionapp config appsettings set (a configuration change). */
const AZ_SHIM = `#!/usr/bin/env node
const args = process.argv.slice(2);
const opt = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const arm = process.env.FAKE_ARM;
async function main() {
  if (args[0] === 'account' && args[1] === 'show') return process.env.FAKE_AZ_SIGNED_IN === '0' ? 1 : 0;
  let method; let url; let body;
  if (args[0] === 'rest') {
    method = (opt('--method') ?? 'get').toUpperCase();
    const u = opt('--url');
    url = arm + (u.startsWith('/') ? u : new URL(u).pathname + new URL(u).search);
  } else if (args.slice(0, 4).join(' ') === 'functionapp config appsettings set') {
    method = 'POST'; url = arm + opt('--ids') + '/cli-appsettings-set'; body = opt('--settings');
  } else { process.stderr.write('ERROR: unexpected az ' + args.join(' ') + '\\n'); return 2; }
  const res = await fetch(url, { method, body });
  const text = await res.text();
  if (res.status >= 400) { process.stderr.write('ERROR: (' + res.status + ') ' + text + '\\n'); return 1; }
  if (opt('-o') !== 'none') process.stdout.write(text);
  return 0;
}
main().then((code) => { process.exitCode = code; });
`;

interface StandIn {
  /** Statuses per setting; what GET …/configreferences/appsettings answers. */
  statuses: Record<string, string>;
  /** When the role assignment "applies": from then on a refresh resolves AccessToKeyVaultDenied. */
  roleAppliesAt: number;
  /** Or: the role applies this long after the first refresh (a loaded machine may start the hook late). */
  roleAppliesAfterFirstRefreshMs?: number;
  /** Whether the refresh call is refused (405), as on a platform that does not offer it. */
  refreshRefused: boolean;
  requests: string[];
  /** References per page of the status answer (nextLink to the rest); default all in one. */
  pageSize?: number;
}

function fetchAgain(s: StandIn): void {
  if (s.roleAppliesAfterFirstRefreshMs !== undefined && s.roleAppliesAt === Infinity)
    s.roleAppliesAt = Date.now() + s.roleAppliesAfterFirstRefreshMs;
  for (const [name, status] of Object.entries(s.statuses)) {
    if ((status === 'AccessToKeyVaultDenied' && Date.now() >= s.roleAppliesAt) || status === 'Initialized')
      s.statuses[name] = 'Resolved';
  }
}

function startStandIn(s: StandIn): Promise<{ server: Server; url: string }> {
  const server = createServer((req: IncomingMessage, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    s.requests.push(`${req.method} ${url.pathname}${url.search}`);
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (!url.pathname.startsWith(APP_ID)) return send(404, { error: { code: 'ResourceNotFound' } });
    const rest = url.pathname.slice(APP_ID.length);
    if (req.method === 'GET' && rest === '/config/configreferences/appsettings') {
      const all = Object.entries(s.statuses);
      const skip = Number(url.searchParams.get('$skiptoken') ?? 0);
      const size = s.pageSize ?? all.length;
      const more = skip + size < all.length;
      return send(200, {
        value: all.slice(skip, skip + size).map(([name, status]) => ({
          id: `${APP_ID}/config/configreferences/appsettings/${name}`,
          name,
          properties: {
            status,
            reference: `@Microsoft.KeyVault(SecretUri=https://kv-x.vault.azure.net/secrets/${name.toLowerCase()})`,
            details: status === 'Resolved' ? '' : `${status} as the stand-in says`,
          },
        })),
        ...(more
          ? {
              nextLink: `${APP_ID}/config/configreferences/appsettings?api-version=2025-03-01&$skiptoken=${skip + size}`,
            }
          : {}),
      });
    }
    if (req.method === 'POST' && rest === '/config/configreferences/appsettings/refresh') {
      if (s.refreshRefused) return send(405, { error: { code: 'MethodNotAllowed' } });
      fetchAgain(s);
      return send(200, {});
    }
    if (req.method === 'POST' && rest === '/cli-appsettings-set') {
      fetchAgain(s); // a configuration change restarts the app and fetches every reference again
      return send(200, {});
    }
    return send(404, { error: { code: 'NotFound', message: rest } });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }),
    ),
  );
}

let bin: string;
let running: { server: Server } | undefined;

beforeAll(() => {
  bin = mkdtempSync(join(tmpdir(), 'oci-import-az-'));
  writeFileSync(join(bin, 'az'), AZ_SHIM);
  chmodSync(join(bin, 'az'), 0o755);
});
afterAll(() => rmSync(bin, { recursive: true, force: true }));
afterEach(async () => {
  await new Promise((r) => running?.server.close(r));
  running = undefined;
});

async function hook(
  s: StandIn,
  env: Record<string, string> = {},
): Promise<{ code: number | null; output: string; seconds: number }> {
  if (running) await new Promise((r) => running!.server.close(r));
  running = await startStandIn(s);
  const { url } = running as { server: Server; url: string };
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HOOK], {
      env: {
        PATH: `${bin}:${process.env.PATH}`,
        FAKE_ARM: url,
        AZURE_FUNCTION_APP_ID: APP_ID,
        KEYVAULT_REFERENCES_WAIT_SECONDS: '30',
        KEYVAULT_REFERENCES_POLL_SECONDS: '0.2',
        KEYVAULT_REFERENCES_REFRESH_SECONDS: '0.5',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (b: Buffer) => {
      output += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      output += b.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output, seconds: (Date.now() - started) / 1000 }));
  });
}

const refreshes = (s: StandIn) => s.requests.filter((r) => r.includes('/refresh')).length;

describe('azd postprovision hook: Key Vault references', () => {
  it('refreshes a reference the platform could not resolve once the role applies, and reports each state', async () => {
    const s: StandIn = {
      statuses: { CREDENTIAL_KEY: 'AccessToKeyVaultDenied', TARGET_PASSWORD: 'Initialized' },
      roleAppliesAt: Infinity,
      roleAppliesAfterFirstRefreshMs: 1000,
      refreshRefused: false,
      requests: [],
    };
    const r = await hook(s);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toMatch(/all 2 Key Vault references resolved \(after \d+ refresh(es)?\)/);
    expect(r.output).toContain('  CREDENTIAL_KEY: Resolved');
    expect(r.output).toContain('  TARGET_PASSWORD: Resolved');
    expect(r.output).toContain('CREDENTIAL_KEY (AccessToKeyVaultDenied)');
    expect(r.output).toContain('asked the platform to resolve every reference again');
    // refreshed again after the role applied: the stand-in never resolves a denied reference by itself
    expect(refreshes(s)).toBeGreaterThanOrEqual(2);
    expect(s.requests).toContain(`POST ${APP_ID}/config/configreferences/appsettings/refresh?api-version=2022-03-01`);
    expect(s.requests[0]).toBe(`GET ${APP_ID}/config/configreferences/appsettings?api-version=2025-03-01`);
    expect(r.seconds).toBeLessThan(30);
  }, 20_000);

  it('makes a configuration change where the refresh call is refused', async () => {
    const s: StandIn = {
      statuses: { CREDENTIAL_KEY: 'AccessToKeyVaultDenied' },
      roleAppliesAt: 0,
      refreshRefused: true,
      requests: [],
    };
    const r = await hook(s);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('made a configuration change instead (app setting KEYVAULT_REFERENCES_REFRESHED_AT)');
    expect(r.output).toContain('  CREDENTIAL_KEY: Resolved');
    expect(s.requests.filter((x) => x.endsWith('/cli-appsettings-set'))).toHaveLength(1);
  }, 20_000);

  it('reports each reference with what to check when one stays unresolved (after one refresh at least), and never fails azd up', async () => {
    const s: StandIn = {
      statuses: { CREDENTIAL_KEY: 'SecretNotFound', TARGET_PASSWORD: 'Resolved' },
      roleAppliesAt: 0,
      refreshRefused: false,
      requests: [],
    };
    const r = await hook(s, { KEYVAULT_REFERENCES_WAIT_SECONDS: '0' });
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('WARNING: after 0 s, 1 of 2 Key Vault references are not resolved');
    expect(r.output).toContain(
      '  CREDENTIAL_KEY: SecretNotFound — the secret does not exist: for credential-key, deploy once with credentialKey (azd passes CREDENTIAL_KEY); for message-key, with messageKey (azd passes MESSAGE_KEY) (SecretNotFound as the stand-in says)',
    );
    expect(r.output).toContain('  TARGET_PASSWORD: Resolved');
    expect(r.output).toContain('/config/configreferences/appsettings/refresh?api-version=2022-03-01');
    expect(refreshes(s)).toBeGreaterThanOrEqual(1);
  }, 20_000);

  it('follows nextLink, and asks for no refresh when every reference is resolved', async () => {
    const s: StandIn = {
      statuses: { CREDENTIAL_KEY: 'Resolved', REGISTRY_CREDENTIALS__hub__PASSWORD: 'Resolved' },
      roleAppliesAt: 0,
      refreshRefused: false,
      requests: [],
      pageSize: 1,
    };
    const r = await hook(s);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain(
      'all 2 Key Vault references resolved:\n  CREDENTIAL_KEY: Resolved\n  REGISTRY_CREDENTIALS__hub__PASSWORD: Resolved',
    );
    expect(s.requests).toEqual([
      `GET ${APP_ID}/config/configreferences/appsettings?api-version=2025-03-01`,
      `GET ${APP_ID}/config/configreferences/appsettings?api-version=2025-03-01&$skiptoken=1`,
    ]);
  }, 20_000);

  it('without a signed-in Azure CLI, or before provisioning, says what to run instead', async () => {
    const s: StandIn = { statuses: {}, roleAppliesAt: 0, refreshRefused: false, requests: [] };
    const r = await hook(s, { FAKE_AZ_SIGNED_IN: '0' });
    expect(r.code).toBe(0);
    expect(r.output).toContain('the Azure CLI is missing or not signed in');
    expect(r.output).toContain(`az rest --method get --url "${APP_ID}/config/configreferences/appsettings`);
    expect(r.output).toContain(
      `az rest --method post --url "${APP_ID}/config/configreferences/appsettings/refresh?api-version=2022-03-01"`,
    );
    expect(r.output).toContain('Environment variables');
    expect(s.requests).toEqual([]);
    const noApp = await hook(s, { AZURE_FUNCTION_APP_ID: '' });
    expect(noApp.code).toBe(0);
    expect(noApp.output).toContain('AZURE_FUNCTION_APP_ID is not set');
  }, 20_000);
});
