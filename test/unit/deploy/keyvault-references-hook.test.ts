/**
 * The azd postprovision hook (scripts/azd/keyvault-references.mjs) against a scripted `az` on PATH: it asks
 * Resource Manager for the app's Key Vault reference status (the documented configreferences endpoint, through
 * `az rest` with the app's resource ID), waits while any is not Resolved, follows nextLink, and when it gives up
 * or cannot ask, says what to check. It never fails `azd up`.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../host/host-process.js';

const APP_ID = '/subscriptions/33333333-3333-4333-8333-333333333333/resourceGroups/rg-x/providers/Microsoft.Web/sites/func-abc';
const HOOK = join(PROJECT_ROOT, 'scripts', 'azd', 'keyvault-references.mjs');

type Page = { value: { id: string; properties: { status: string; details?: string } }[]; nextLink?: string };
const ref = (setting: string, status: string, details?: string) => ({
  id: `${APP_ID}/config/configreferences/appsettings/${setting}`, properties: { status, ...(details ? { details } : {}) },
});

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A fake `az`: `account show` exits `signedIn ? 0 : 1`; each `rest` call answers the next page; calls are logged. */
function fakeAz(o: { signedIn: boolean; pages: Page[] }): { dir: string; calls: () => string[][] } {
  dir = mkdtempSync(join(tmpdir(), 'oci-import-fake-az-'));
  writeFileSync(join(dir, 'pages.json'), JSON.stringify(o.pages));
  writeFileSync(join(dir, 'calls.json'), '[]');
  const script = `#!${process.execPath}
const fs = require('node:fs');
const dir = ${JSON.stringify(dir)};
const args = process.argv.slice(2);
const calls = JSON.parse(fs.readFileSync(dir + '/calls.json', 'utf8'));
calls.push(args);
fs.writeFileSync(dir + '/calls.json', JSON.stringify(calls));
if (args[0] === 'account') process.exit(${o.signedIn ? 0 : 1});
if (args[0] === 'rest') {
  const pages = JSON.parse(fs.readFileSync(dir + '/pages.json', 'utf8'));
  const page = pages.length > 1 ? pages.shift() : pages[0];
  fs.writeFileSync(dir + '/pages.json', JSON.stringify(pages));
  process.stdout.write(JSON.stringify(page));
  process.exit(0);
}
process.exit(2);
`;
  writeFileSync(join(dir, 'az'), script);
  chmodSync(join(dir, 'az'), 0o755);
  const d = dir;
  return { dir: d, calls: () => JSON.parse(readFileSync(join(d, 'calls.json'), 'utf8')) as string[][] };
}

function runHook(env: Record<string, string | undefined>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [HOOK], {
      env: { PATH: `${env.FAKE_AZ_DIR ?? ''}${delimiter}${process.env.PATH}`, KEYVAULT_REFERENCES_POLL_SECONDS: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { out += b.toString(); });
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe('azd postprovision hook: Key Vault reference status', () => {
  it('waits while a reference is not resolved and ends when all are, asking Resource Manager by the app\'s resource ID', async () => {
    const az = fakeAz({ signedIn: true, pages: [
      { value: [ref('CREDENTIAL_KEY', 'AccessToKeyVaultDenied'), ref('TARGET_PASSWORD', 'Initialized')] },
      { value: [ref('CREDENTIAL_KEY', 'Resolved'), ref('TARGET_PASSWORD', 'Resolved')] },
    ] });
    const r = await runHook({ FAKE_AZ_DIR: az.dir, AZURE_FUNCTION_APP_ID: APP_ID, KEYVAULT_REFERENCES_WAIT_SECONDS: '30' });
    expect(r.code).toBe(0);
    expect(r.out).toContain('waiting for CREDENTIAL_KEY (AccessToKeyVaultDenied), TARGET_PASSWORD (Initialized)');
    expect(r.out).toContain('all 2 Key Vault references resolved: CREDENTIAL_KEY, TARGET_PASSWORD');
    const rest = az.calls().filter((c) => c[0] === 'rest');
    expect(rest).toHaveLength(2);
    expect(rest[0]).toEqual(['rest', '--method', 'get', '--url', `${APP_ID}/config/configreferences/appsettings?api-version=2025-03-01`, '-o', 'json', '--only-show-errors']);
  });

  it('follows nextLink', async () => {
    const next = `${APP_ID}/config/configreferences/appsettings?api-version=2025-03-01&$skiptoken=2`;
    const az = fakeAz({ signedIn: true, pages: [
      { value: [ref('CREDENTIAL_KEY', 'Resolved')], nextLink: next },
      { value: [ref('REGISTRY_CREDENTIALS__hub__PASSWORD', 'Resolved')] },
    ] });
    const r = await runHook({ FAKE_AZ_DIR: az.dir, AZURE_FUNCTION_APP_ID: APP_ID });
    expect(r.out).toContain('all 2 Key Vault references resolved: CREDENTIAL_KEY, REGISTRY_CREDENTIALS__hub__PASSWORD');
    expect(az.calls().filter((c) => c[0] === 'rest')[1]?.[4]).toBe(next);
  });

  it('gives up after the wait with what each status asks of you, and how to check, without failing azd', async () => {
    const az = fakeAz({ signedIn: true, pages: [
      { value: [ref('CREDENTIAL_KEY', 'SecretNotFound', 'secret credential-key not found'), ref('TARGET_PASSWORD', 'Resolved')] },
    ] });
    const r = await runHook({ FAKE_AZ_DIR: az.dir, AZURE_FUNCTION_APP_ID: APP_ID, KEYVAULT_REFERENCES_WAIT_SECONDS: '0' });
    expect(r.code).toBe(0);
    expect(r.out).toContain('WARNING: after 0 s these references are still not resolved');
    expect(r.out).toContain('CREDENTIAL_KEY: SecretNotFound — the secret does not exist: for credential-key, deploy once with credentialKey (azd passes CREDENTIAL_KEY); for message-key, with messageKey (azd passes MESSAGE_KEY) (secret credential-key not found)');
    expect(r.out).not.toContain('TARGET_PASSWORD:');
    expect(r.out).toContain(`az rest --method get --url "${APP_ID}/config/configreferences/appsettings?api-version=2025-03-01"`);
  });

  it('without a signed-in Azure CLI, or before provisioning, says how to check instead', async () => {
    const az = fakeAz({ signedIn: false, pages: [] });
    const notSignedIn = await runHook({ FAKE_AZ_DIR: az.dir, AZURE_FUNCTION_APP_ID: APP_ID });
    expect(notSignedIn.code).toBe(0);
    expect(notSignedIn.out).toContain('the Azure CLI is missing or not signed in');
    expect(notSignedIn.out).toContain('Environment variables');
    expect(az.calls().filter((c) => c[0] === 'rest')).toEqual([]);
    const noApp = await runHook({ FAKE_AZ_DIR: az.dir });
    expect(noApp.code).toBe(0);
    expect(noApp.out).toContain('AZURE_FUNCTION_APP_ID is not set');
  });
});
