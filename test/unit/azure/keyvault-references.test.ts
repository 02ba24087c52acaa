/**
 * Settings that still hold their `@Microsoft.KeyVault(...)` reference (the platform could not resolve it yet):
 * told apart from bad values, temporary (a queue step is retried, an HTTP call gets 503), and reported with
 * what to check — the reference shown, never another setting's value.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { afterEach, describe, expect, it } from 'vitest';
import { createImport } from '../../../functions/imports.js';
import { ConfigError, KeyVaultReferenceError, isKeyVaultReference, loadConfig } from '../../../lib/config.js';
import { setImportService, storageClients } from '../../../lib/service/runtime.js';
import { testService } from '../../support/service.js';

const KEY = Buffer.alloc(32, 7).toString('base64');
const REF = '@Microsoft.KeyVault(SecretUri=https://kv-abc.vault.azure.net/secrets/credential-key)';

describe('Key Vault references the platform has not resolved', () => {
  it('tells a reference apart from a value that merely contains the text', () => {
    expect(isKeyVaultReference(REF)).toBe(true);
    expect(isKeyVaultReference(' @Microsoft.KeyVault(VaultName=kv;SecretName=s)')).toBe(true);
    expect(isKeyVaultReference('pw@Microsoft.KeyVault(')).toBe(false);
    expect(isKeyVaultReference('')).toBe(false);
    expect(isKeyVaultReference(undefined)).toBe(false);
  });

  it('a secret setting: temporary KEY_VAULT_REFERENCE_UNRESOLVED when read, naming the setting, the reference and what to check', () => {
    const env = { CREDENTIAL_KEY: REF, TARGET_USERNAME: 'pusher', TARGET_PASSWORD: 'the-real-target-password' };
    const config = loadConfig(env); // imports that need no inline credentials go on
    expect(config.targetPassword).toBe('the-real-target-password');
    const err = (() => {
      try {
        return config.credentialKey;
      } catch (e) {
        return e;
      }
    })() as KeyVaultReferenceError;
    expect(err).toBeInstanceOf(KeyVaultReferenceError);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ code: 'KEY_VAULT_REFERENCE_UNRESOLVED', setting: 'CREDENTIAL_KEY', temporary: true });
    expect(err.message).toContain(
      `setting CREDENTIAL_KEY: holds a Key Vault reference the platform has not resolved: ${REF}.`,
    );
    for (const hint of [
      'Key Vault Secrets User',
      'keyVaultReferenceIdentity',
      'the secret exists',
      'reference syntax',
      '/config/configreferences/appsettings',
      'az functionapp config appsettings list',
      'This invocation is retried',
    ]) {
      expect(err.message).toContain(hint);
    }
    expect(err.message).not.toContain('the-real-target-password');
    const unresolvedPassword = loadConfig({
      TARGET_USERNAME: 'pusher',
      TARGET_PASSWORD: '@Microsoft.KeyVault(VaultName=kv;SecretName=target-password)',
    });
    expect(unresolvedPassword.targetAuth).toBe('basic');
    expect(() => unresolvedPassword.targetPassword).toThrow(
      expect.objectContaining({ code: 'KEY_VAULT_REFERENCE_UNRESOLVED', setting: 'TARGET_PASSWORD' }),
    );
  });

  it('any other setting as an unresolved reference stops loadConfig, temporarily', () => {
    expect(() => loadConfig({ TARGET_REGISTRY: '@Microsoft.KeyVault(VaultName=kv;SecretName=registry)' })).toThrow(
      expect.objectContaining({ code: 'KEY_VAULT_REFERENCE_UNRESOLVED', setting: 'TARGET_REGISTRY', temporary: true }),
    );
  });

  it('loadConfig: a bad value stays a permanent INVALID_SETTING', () => {
    expect(() => loadConfig({ CREDENTIAL_KEY: 'short' })).toThrow(expect.objectContaining({ code: 'INVALID_SETTING' }));
    expect(() => loadConfig({ CREDENTIAL_KEY: 'short' })).not.toThrow(KeyVaultReferenceError);
  });

  it('a named credential: only that credential is unavailable, and temporarily', () => {
    const env = {
      REGISTRY_CREDENTIALS__hub__USERNAME: 'me',
      REGISTRY_CREDENTIALS__hub__PASSWORD: '@Microsoft.KeyVault(VaultName=kv-abc;SecretName=registry-credential-hub)',
      REGISTRY_CREDENTIALS__hub__REGISTRIES: 'docker.io,auth.docker.io',
      REGISTRY_CREDENTIALS__ghcr__USERNAME: 'me',
      REGISTRY_CREDENTIALS__ghcr__PASSWORD: 'resolved-token',
      REGISTRY_CREDENTIALS__ghcr__REGISTRIES: 'ghcr.io',
    };
    expect(() => loadConfig(env)).not.toThrow();
    const credentials = loadConfig(env).credentials;
    expect(credentials.get('ghcr')).toMatchObject({ username: 'me', password: 'resolved-token' });
    expect(() => credentials.get('hub')!.password).toThrow(
      expect.objectContaining({
        code: 'KEY_VAULT_REFERENCE_UNRESOLVED',
        temporary: true,
        setting: 'REGISTRY_CREDENTIALS__hub__PASSWORD',
      }),
    );
  });

  it('storage settings given as references are reported the same way', () => {
    expect(() =>
      storageClients({ AzureWebJobsStorage: '@Microsoft.KeyVault(VaultName=kv;SecretName=storage)' }),
    ).toThrow(expect.objectContaining({ code: 'KEY_VAULT_REFERENCE_UNRESOLVED', setting: 'AzureWebJobsStorage' }));
  });

  it('a queue step of a job with an unresolved credential is retried, not failed', async () => {
    const env = {
      TARGET_REGISTRY: 'myregistry.example',
      CREDENTIAL_KEY: KEY,
      REGISTRY_CREDENTIALS__hub__USERNAME: 'me',
      REGISTRY_CREDENTIALS__hub__REGISTRIES: 'docker.io,auth.docker.io',
    };
    const submitted = testService({ ...env, REGISTRY_CREDENTIALS__hub__PASSWORD: 'resolved-for-now' });
    const job = await submitted.service.submit({ source: 'docker.io/library/nginx:1.27', credential: 'hub' }, 'http');
    // The worker that runs the step started while the platform could not read the secret (same storage and queue).
    const t = testService(
      {
        ...env,
        REGISTRY_CREDENTIALS__hub__PASSWORD: '@Microsoft.KeyVault(VaultName=kv-abc;SecretName=registry-credential-hub)',
      },
      { docs: submitted.docs, queue: submitted.queue },
    );
    const [message] = t.queue.drain();
    await expect(t.service.handleMessage(message!, t.meta(1))).rejects.toMatchObject({
      code: 'KEY_VAULT_REFERENCE_UNRESOLVED',
      temporary: true,
    });
    expect((await t.service.status(job.id))?.status).toBe('queued');
    expect(t.logs.join('\n')).toContain('will retry: [KEY_VAULT_REFERENCE_UNRESOLVED]');
    expect(t.logs.join('\n')).not.toContain('resolved-for-now');
  });

  it('a queue step that needs the key is retried, and the job fails with the reason only after the last attempt', async () => {
    const env = { TARGET_REGISTRY: 'myregistry.example', ALLOWED_SOURCES: '*' };
    const submitted = testService({ ...env, CREDENTIAL_KEY: KEY });
    const job = await submitted.service.submit(
      { source: 'docker.io/library/nginx:1.27', username: 'u', password: 'inline-pw' },
      'http',
    );
    // A worker started while the platform could not read credential-key (same storage and queue).
    const worker = testService({ ...env, CREDENTIAL_KEY: REF }, { docs: submitted.docs, queue: submitted.queue });
    const [message] = worker.queue.drain();
    await expect(worker.service.handleMessage(message, worker.meta(1))).rejects.toMatchObject({
      code: 'KEY_VAULT_REFERENCE_UNRESOLVED',
    });
    expect((await worker.service.status(job.id))?.status).toBe('queued');
    await expect(worker.service.handleMessage(message, worker.meta(3))).rejects.toMatchObject({
      code: 'KEY_VAULT_REFERENCE_UNRESOLVED',
    });
    const failed = await worker.service.status(job.id);
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'KEY_VAULT_REFERENCE_UNRESOLVED' } });
    expect(failed?.error?.message).toContain('gave up after 3 attempts');
    expect(JSON.stringify([failed, worker.logs])).not.toContain('inline-pw');
  });

  describe('HTTP', () => {
    afterEach(() => setImportService(undefined));

    const post = (body: unknown) =>
      createImport(
        new HttpRequest({
          method: 'POST',
          url: 'http://127.0.0.1:7071/api/imports',
          headers: { 'content-type': 'application/json' },
          body: { string: JSON.stringify(body) },
        }),
        context(),
      );
    const logged: string[] = [];
    const context = () =>
      new InvocationContext({
        functionName: 'createImport',
        logHandler: (_level, ...args) => logged.push(args.join(' ')),
      });

    it('POST /api/imports: 202 without inline credentials, 503 + Retry-After with them; the caller learns the setting, the log what to check', async () => {
      const t = testService({ TARGET_REGISTRY: 'myregistry.example', CREDENTIAL_KEY: REF });
      setImportService(t.service);
      expect((await post({ source: 'nginx:1.27' })).status).toBe(202);
      const res = await post({ source: 'nginx:1.27', username: 'u', password: 'inline-pw' });
      expect(res.status).toBe(503);
      expect(res.headers).toEqual({ 'retry-after': '30', 'x-ms-error-code': 'KEY_VAULT_REFERENCE_UNRESOLVED' });
      expect(res.jsonBody).toEqual({
        error: {
          code: 'KEY_VAULT_REFERENCE_UNRESOLVED',
          target: 'CREDENTIAL_KEY',
          message:
            "the app's setting CREDENTIAL_KEY is not available yet (its Key Vault reference is not resolved); try again later",
        },
      });
      expect(logged.join('\n')).toContain(REF);
      expect(logged.join('\n')).not.toContain('inline-pw');
    });

    it('a service that cannot start (a non-secret setting unresolved) answers 503 too', async () => {
      setImportService(undefined);
      process.env.TARGET_REGISTRY = '@Microsoft.KeyVault(VaultName=kv;SecretName=registry)';
      try {
        const res = await post({ source: 'nginx:1.27' });
        expect(res.status).toBe(503);
        expect(res.jsonBody).toMatchObject({
          error: { code: 'KEY_VAULT_REFERENCE_UNRESOLVED', target: 'TARGET_REGISTRY' },
        });
      } finally {
        delete process.env.TARGET_REGISTRY;
      }
    });
  });
});
