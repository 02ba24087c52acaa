#!/usr/bin/env node
/**
 * azd `postprovision` hook (azure.yaml): makes the platform resolve the function app's Key Vault references again
 * while any is not `Resolved`, waits, and reports each reference's state.
 *
 * The platform resolves `@Microsoft.KeyVault(...)` settings with the app's identity; until it can (a role
 * assignment still propagating, a missing secret) the app receives the reference text itself, and the app fails
 * such invocations as temporary (KEY_VAULT_REFERENCE_UNRESOLVED). The platform caches what it resolved and fetches
 * it again only every 24 hours, or at once after a configuration change of the app, or when asked with
 * `POST <app>/config/configreferences/appsettings/refresh` (Microsoft Learn, "Use Key Vault references as app
 * settings", Understand rotation). So a reference that failed at the first start would stay failed for up to a
 * day after its cause is gone: this hook asks for that refresh (or, where the refresh call is refused, makes a
 * configuration change: it sets the app setting KEYVAULT_REFERENCES_REFRESHED_AT) every
 * KEYVAULT_REFERENCES_REFRESH_SECONDS while a reference is not resolved.
 *
 * The status per setting comes from Resource Manager: `GET <app>/config/configreferences/appsettings` (REST: Web
 * Apps - Get App Settings Key Vault References), read here through `az rest`, which puts the current cloud's
 * Resource Manager in front of a resource ID.
 *
 * Environment: AZURE_FUNCTION_APP_ID (a template output azd hands to hooks); KEYVAULT_REFERENCES_WAIT_SECONDS
 * (default 300), KEYVAULT_REFERENCES_POLL_SECONDS (default 15), KEYVAULT_REFERENCES_REFRESH_SECONDS (default 60).
 * Never fails `azd up`: a reference still unresolved at the end is reported with what to check, not fatal.
 */
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

const API_VERSION = '2025-03-01';
/** The api-version of the refresh call as Microsoft's page gives it. */
const REFRESH_API_VERSION = '2022-03-01';
/** The app setting this hook writes when it has to make a configuration change. */
const REFRESH_SETTING = 'KEYVAULT_REFERENCES_REFRESHED_AT';
const env = process.env;
const seconds = (value, fallback) =>
  Number.isFinite(Number(value)) && value !== '' && value !== undefined ? Number(value) : fallback;
const waitSeconds = seconds(env.KEYVAULT_REFERENCES_WAIT_SECONDS, 300);
const pollSeconds = seconds(env.KEYVAULT_REFERENCES_POLL_SECONDS, 15);
const refreshSeconds = seconds(env.KEYVAULT_REFERENCES_REFRESH_SECONDS, 60);
const appId = env.AZURE_FUNCTION_APP_ID ?? '';
const log = (line) => process.stdout.write(`${line}\n`);

/** What each ResolveStatus (ApiKVReference.status) asks of you. */
const ADVICE = {
  Resolved: 'resolved',
  Initialized: 'not read yet; the platform reads references when the app starts or its configuration changes',
  InvalidSyntax: 'the setting is not a valid @Microsoft.KeyVault(SecretUri=…) or (VaultName=…;SecretName=…) reference',
  MSINotEnabled:
    "the app has no identity for Key Vault references: check keyVaultReferenceIdentity and the app's user-assigned identity",
  VaultNotFound: 'the vault does not exist, or the app cannot reach it',
  SecretNotFound:
    'the secret does not exist: for credential-key, deploy once with credentialKey (azd passes CREDENTIAL_KEY); for message-key, with messageKey (azd passes MESSAGE_KEY)',
  SecretVersionNotFound: 'the referenced secret version does not exist',
  AccessToKeyVaultDenied:
    'the identity lacks Key Vault Secrets User on the vault; a new role assignment can take minutes to apply',
  FetchTimedOut: 'the vault did not answer in time',
  UnauthorizedClient: 'the identity is not allowed to get tokens for the vault',
  OtherReasons: 'see the details',
};

const statusUrl = `${appId}/config/configreferences/appsettings?api-version=${API_VERSION}`;
const refreshUrl = `${appId}/config/configreferences/appsettings/refresh?api-version=${REFRESH_API_VERSION}`;

function howToCheck() {
  const app = appId || '<AZURE_FUNCTION_APP_ID>';
  log('keyvault-references: check the status of each Key Vault reference yourself:');
  log(
    `  az rest --method get --url "${app}/config/configreferences/appsettings?api-version=${API_VERSION}" --query "value[].{setting:name, status:properties.status, details:properties.details}" -o table`,
  );
  log(
    '  or in the portal: the function app → Environment variables → each @Microsoft.KeyVault setting shows its status.',
  );
  log('  Once the cause is fixed, make the platform read every reference again (else it does so within 24 hours):');
  log(
    `  az rest --method post --url "${app}/config/configreferences/appsettings/refresh?api-version=${REFRESH_API_VERSION}"`,
  );
  log(
    '  or change any configuration of the app (a configuration change restarts it and fetches every reference again).',
  );
}

function az(args) {
  const r = spawnSync('az', args, { encoding: 'utf8', shell: process.platform === 'win32', timeout: 120_000 });
  return {
    ok: !r.error && r.status === 0,
    stdout: r.stdout ?? '',
    stderr: (r.stderr ?? '').trim() || String(r.error ?? ''),
  };
}

/** The references and their status, or why they could not be read. */
function readStatus() {
  const out = [];
  let url = statusUrl;
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
      const setting = String(item.name ?? item.id ?? '')
        .split('/')
        .pop();
      out.push({ setting, status: item.properties?.status ?? 'unknown', details: item.properties?.details ?? '' });
    }
    url = page.nextLink ?? '';
  }
  return { references: out };
}

/**
 * Makes the platform fetch every reference again: the documented refresh call, or, where Resource Manager refuses
 * it, a configuration change (one app setting of this hook's own, set to the time). Returns what was done.
 */
function refresh() {
  const r = az(['rest', '--method', 'post', '--url', refreshUrl, '-o', 'none', '--only-show-errors']);
  if (r.ok)
    return 'asked the platform to resolve every reference again (POST …/config/configreferences/appsettings/refresh)';
  const change = az([
    'functionapp',
    'config',
    'appsettings',
    'set',
    '--ids',
    appId,
    '--settings',
    `${REFRESH_SETTING}=${new Date().toISOString()}`,
    '-o',
    'none',
    '--only-show-errors',
  ]);
  if (change.ok) {
    return (
      `the refresh call was refused (${r.stderr.split('\n')[0]}); made a configuration change instead ` +
      `(app setting ${REFRESH_SETTING}), which restarts the app and fetches every reference again`
    );
  }
  return (
    `could not make the platform resolve the references again: the refresh call answered ${r.stderr.split('\n')[0]}; ` +
    `setting ${REFRESH_SETTING} answered ${change.stderr.split('\n')[0]}`
  );
}

function report(references) {
  for (const r of references) {
    log(
      `  ${r.setting}: ${r.status}${r.status === 'Resolved' ? '' : ` — ${ADVICE[r.status] ?? 'unknown status'}`}${r.details && r.status !== 'Resolved' ? ` (${r.details})` : ''}`,
    );
  }
}

async function main() {
  if (!appId) {
    log('keyvault-references: AZURE_FUNCTION_APP_ID is not set (run `azd provision` first).');
    howToCheck();
    return;
  }
  if (!az(['account', 'show', '-o', 'none', '--only-show-errors']).ok) {
    log(
      'keyvault-references: the Azure CLI is missing or not signed in (`az login`), so the status cannot be read here.',
    );
    howToCheck();
    return;
  }
  const deadline = Date.now() + waitSeconds * 1000;
  let lastRefresh = -Infinity;
  let refreshes = 0;
  for (;;) {
    const got = readStatus();
    if (got.error) {
      log(`keyvault-references: cannot read the reference status: ${got.error}`);
      howToCheck();
      return;
    }
    const pending = got.references.filter((r) => r.status !== 'Resolved');
    if (pending.length === 0) {
      log(
        `keyvault-references: all ${got.references.length} Key Vault references resolved${refreshes ? ` (after ${refreshes} refresh${refreshes > 1 ? 'es' : ''})` : ''}:`,
      );
      report(got.references);
      return;
    }
    // Gives up only after one refresh at least: a reference that failed before the wait began needs one.
    if (Date.now() >= deadline && refreshes > 0) {
      log(
        `keyvault-references: WARNING: after ${waitSeconds} s, ${pending.length} of ${got.references.length} Key Vault references are not resolved; ` +
          'until they are, the app fails the invocations that need them as temporary (KEY_VAULT_REFERENCE_UNRESOLVED). The platform ' +
          'fetches them again only after a configuration change or within 24 hours: fix the cause, then refresh (below). Each reference:',
      );
      report(got.references);
      howToCheck();
      return;
    }
    if (Date.now() - lastRefresh >= refreshSeconds * 1000) {
      log(
        `keyvault-references: not resolved: ${pending.map((r) => `${r.setting} (${r.status})`).join(', ')}; ${refresh()}`,
      );
      lastRefresh = Date.now();
      refreshes++;
    } else {
      log(`keyvault-references: waiting for ${pending.map((r) => `${r.setting} (${r.status})`).join(', ')}`);
    }
    await sleep(Math.max(0, Math.min(pollSeconds * 1000, deadline - Date.now())));
  }
}

await main();
