#!/usr/bin/env node
/**
 * azd `postprovision` hook (azure.yaml): waits until every Key Vault reference among the function app's settings
 * reports `Resolved`, or says which one does not and what to do.
 *
 * The platform resolves `@Microsoft.KeyVault(...)` settings with the app's identity; until it can (a role
 * assignment still propagating, a missing secret) the app receives the reference text itself, and the app fails
 * such invocations as temporary (KEY_VAULT_REFERENCE_UNRESOLVED). The status per setting comes from Resource
 * Manager: `GET <app>/config/configreferences/appsettings` (REST: Web Apps - Get App Settings Key Vault References),
 * read here through `az rest`, which puts the current cloud's Resource Manager in front of a resource ID.
 *
 * Environment: AZURE_FUNCTION_APP_ID (a template output azd hands to hooks); KEYVAULT_REFERENCES_WAIT_SECONDS
 * (default 300), KEYVAULT_REFERENCES_POLL_SECONDS (default 15). Never fails `azd up`: the app retries on its own,
 * so a reference still unresolved at the end is reported, not fatal.
 */
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

const API_VERSION = '2025-03-01';
const env = process.env;
const waitSeconds = Number(env.KEYVAULT_REFERENCES_WAIT_SECONDS ?? 300);
const pollSeconds = Number(env.KEYVAULT_REFERENCES_POLL_SECONDS ?? 15);
const appId = env.AZURE_FUNCTION_APP_ID ?? '';
const log = (line) => process.stdout.write(`${line}\n`);

/** What each ResolveStatus (ApiKVReference.status) asks of you. */
const ADVICE = {
  Initialized: 'not read yet; the platform reads references when the app starts or its configuration changes',
  InvalidSyntax: 'the setting is not a valid @Microsoft.KeyVault(SecretUri=…) or (VaultName=…;SecretName=…) reference',
  MSINotEnabled: 'the app has no identity for Key Vault references: check keyVaultReferenceIdentity and the app\'s user-assigned identity',
  VaultNotFound: 'the vault does not exist, or the app cannot reach it',
  SecretNotFound: 'the secret does not exist: for credential-key, deploy once with credentialKey (azd passes CREDENTIAL_KEY); for message-key, with messageKey (azd passes MESSAGE_KEY)',
  SecretVersionNotFound: 'the referenced secret version does not exist',
  AccessToKeyVaultDenied: 'the identity lacks Key Vault Secrets User on the vault; a new role assignment can take minutes to apply',
  FetchTimedOut: 'the vault did not answer in time; it is retried',
  UnauthorizedClient: 'the identity is not allowed to get tokens for the vault',
  OtherReasons: 'see `details`',
};

const check = `az rest --method get --url "${appId || '<AZURE_FUNCTION_APP_ID>'}/config/configreferences/appsettings?api-version=${API_VERSION}" --query "value[].{setting:id, status:properties.status, details:properties.details}" -o table`;

function howToCheck() {
  log('keyvault-references: check the status of each Key Vault reference yourself:');
  log(`  ${check}`);
  log('  or in the portal: the function app → Environment variables → each @Microsoft.KeyVault setting shows its status.');
  log('  Once the cause is fixed, any change of the app\'s configuration makes the platform read every reference again.');
}

function az(args) {
  const r = spawnSync('az', args, { encoding: 'utf8', shell: process.platform === 'win32', timeout: 120_000 });
  return { ok: !r.error && r.status === 0, stdout: r.stdout ?? '', stderr: (r.stderr ?? '').trim() || String(r.error ?? '') };
}

/** The references and their status, or why they could not be read. */
function readStatus() {
  const out = [];
  let url = `${appId}/config/configreferences/appsettings?api-version=${API_VERSION}`;
  while (url) {
    const r = az(['rest', '--method', 'get', '--url', url, '-o', 'json', '--only-show-errors']);
    if (!r.ok) return { error: r.stderr.split('\n')[0] };
    let page;
    try {
      page = JSON.parse(r.stdout);
    } catch {
      return { error: 'az rest did not answer JSON' };
    }
    for (const item of page.value ?? []) {
      const setting = String(item.name ?? item.id ?? '').split('/').pop();
      out.push({ setting, status: item.properties?.status ?? 'unknown', details: item.properties?.details ?? '' });
    }
    url = page.nextLink ?? '';
  }
  return { references: out };
}

async function main() {
  if (!appId) {
    log('keyvault-references: AZURE_FUNCTION_APP_ID is not set (run `azd provision` first).');
    howToCheck();
    return;
  }
  if (!az(['account', 'show', '-o', 'none', '--only-show-errors']).ok) {
    log('keyvault-references: the Azure CLI is missing or not signed in (`az login`), so the status cannot be read here.');
    howToCheck();
    return;
  }
  const deadline = Date.now() + waitSeconds * 1000;
  let last = [];
  for (;;) {
    const got = readStatus();
    if (got.error) {
      log(`keyvault-references: cannot read the reference status: ${got.error}`);
      howToCheck();
      return;
    }
    last = got.references;
    const pending = last.filter((r) => r.status !== 'Resolved');
    if (pending.length === 0) {
      log(`keyvault-references: all ${last.length} Key Vault references resolved: ${last.map((r) => r.setting).join(', ') || '(none)'}`);
      return;
    }
    if (Date.now() >= deadline) break;
    log(`keyvault-references: waiting for ${pending.map((r) => `${r.setting} (${r.status})`).join(', ')}`);
    await sleep(Math.max(0, pollSeconds) * 1000);
  }
  log(`keyvault-references: WARNING: after ${waitSeconds} s these references are still not resolved; until they are, `
    + 'the app fails the invocations that need them as temporary (KEY_VAULT_REFERENCE_UNRESOLVED) and retries:');
  for (const r of last.filter((x) => x.status !== 'Resolved')) {
    log(`  ${r.setting}: ${r.status} — ${ADVICE[r.status] ?? 'unknown status'}${r.details ? ` (${r.details})` : ''}`);
  }
  howToCheck();
}

await main();
