/** What a registry's refusal becomes on an Azure sign-in path, and where errors leave the service (by side). */
import { describe, expect, it } from 'vitest';
import { explainFailure } from '../../../lib/azure/clients.js';
import { AzureError, explainError, registryName, type AzureRegistryContext } from '../../../lib/azure/errors.js';
import { RegistryError, parseDiagnostics } from '../../../lib/oci/errors.js';

type ExplainedRegistryError = AzureError;

const FIREWALL = JSON.stringify({
  errors: [
    {
      code: 'DENIED',
      message: "client with IP '203.0.113.7' is not allowed access. Refer https://aka.ms/acr/firewall to grant access.",
    },
  ],
});
const DENIED = JSON.stringify({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] });
const UNAUTHORIZED = JSON.stringify({
  errors: [
    {
      code: 'UNAUTHORIZED',
      message: 'authentication required, visit https://aka.ms/acr/authorization for more information.',
    },
  ],
});
const LOCKED = JSON.stringify({
  errors: [{ code: 'DENIED', message: 'The operation is disallowed on this registry, repository or image.' }],
});

const err = (method: string, path: string, status: number, body: string) =>
  new RegistryError(method, `https://myregistry.azurecr.io${path}`, status, parseDiagnostics(body));
const target: AzureRegistryContext = {
  registry: 'myregistry.azurecr.io',
  role: 'target',
  identity: "the app's system-assigned managed identity",
};
const source: AzureRegistryContext = {
  registry: 'myregistry.azurecr.io',
  role: 'source',
  identity: "the app's system-assigned managed identity",
};

describe('explainError', () => {
  it('a 401 to a manifest PUT on the target: lacks push rights', () => {
    const original = err('PUT', '/v2/team/app/manifests/1.0', 401, UNAUTHORIZED);
    const e = explainError(original, target) as ExplainedRegistryError;
    // As temporary as the registry's error, on the same side, the original as its cause, in our words.
    expect(e).toBeInstanceOf(AzureError);
    expect(e).toMatchObject({ code: 'ACCESS_DENIED', temporary: false, side: 'target' });
    expect(explainError(e, target)).toBe(e);
    expect(e.message).toBe(
      "The app's system-assigned managed identity lacks push rights on registry myregistry.azurecr.io (repository team/app): assign it the AcrPush role on the registry (Container Registry Repository Writer when the registry uses ABAC repository permissions); the registry answered 401 UNAUTHORIZED: authentication required, visit https://aka.ms/acr/authorization for more information.",
    );
    expect(e.cause).toBeInstanceOf(RegistryError);
  });

  it('a 403 "requested access … denied" from a source: lacks pull rights', () => {
    const e = explainError(
      err('GET', '/v2/library/nginx/blobs/sha256:abc', 403, DENIED),
      source,
    ) as ExplainedRegistryError;
    expect(e.message).toMatch(
      /^The app's system-assigned managed identity lacks pull rights on registry myregistry\.azurecr\.io \(repository library\/nginx\): assign it the AcrPull role on the registry \(Container Registry Repository Reader when/,
    );
  });

  it('the firewall refusal: by role and by how the registry was given', () => {
    expect((explainError(err('GET', '/v2/a/manifests/1', 403, FIREWALL), source) as ExplainedRegistryError).code).toBe(
      'PUBLIC_ACCESS_DISABLED',
    );
    expect(
      (
        explainError(err('GET', '/v2/a/manifests/1', 403, FIREWALL), {
          ...source,
          resourceId: '/subscriptions/x',
        }) as ExplainedRegistryError
      ).code,
    ).toBe('NETWORK_RESTRICTED');
    expect(
      (explainError(err('PUT', '/v2/a/manifests/1', 403, FIREWALL), target) as ExplainedRegistryError).message,
    ).toContain(
      'a network-restricted registry must allow trusted services (az acr update --name myregistry --allow-trusted-services true)',
    );
    expect(
      (
        explainError(err('GET', '/v2/a/manifests/1', 403, FIREWALL), {
          ...source,
          crossTenant: true,
        }) as ExplainedRegistryError
      ).code,
    ).toBe('CROSS_TENANT_NOT_SUPPORTED');
  });

  it('leaves alone what it cannot explain: other statuses, a locked image, non-registry errors, access when told so', () => {
    const notFound = err('GET', '/v2/a/manifests/1', 404, '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"x"}]}');
    expect(explainError(notFound, target)).toBe(notFound);
    const locked = err('PUT', '/v2/a/manifests/1', 403, LOCKED);
    expect(explainError(locked, target)).toBe(locked);
    const plain = new Error('x');
    expect(explainError(plain, target)).toBe(plain);
    const unauthorized = err('GET', '/v2/a/manifests/1', 401, UNAUTHORIZED);
    expect(explainError(unauthorized, source, { access: false })).toBe(unauthorized);
    expect(
      (
        explainError(err('GET', '/v2/a/manifests/1', 403, FIREWALL), source, {
          access: false,
        }) as ExplainedRegistryError
      ).code,
    ).toBe('PUBLIC_ACCESS_DISABLED');
  });

  it('names the registry for az acr commands by its first label', () => {
    expect(registryName('contoso.azurecr.io')).toBe('contoso');
    expect(registryName('127.0.0.1:5000')).toBe('127');
  });
});

describe('explainFailure', () => {
  const auth = (ctx: AzureRegistryContext) => ({ context: ctx, explain: {} });

  it('explains an error by the sign-in of the side it came from, and nothing else', () => {
    const fromTarget = err('PUT', '/v2/team/app/manifests/1', 401, UNAUTHORIZED);
    fromTarget.side = 'target';
    expect(explainFailure(fromTarget, { source: auth(source), target: auth(target) })).toMatchObject({
      code: 'ACCESS_DENIED',
      message: expect.stringContaining('lacks push rights'),
    });
    const fromSource = err('GET', '/v2/team/app/manifests/1', 401, UNAUTHORIZED);
    fromSource.side = 'source';
    expect(explainFailure(fromSource, { source: auth(source), target: auth(target) })).toMatchObject({
      message: expect.stringContaining('lacks pull rights'),
    });
    // a side without an Azure sign-in, or an error without a side, passes unchanged
    expect(explainFailure(fromSource, { target: auth(target) })).toBe(fromSource);
    const sideless = err('PUT', '/v2/team/app/manifests/1', 401, UNAUTHORIZED);
    expect(explainFailure(sideless, { source: auth(source), target: auth(target) })).toBe(sideless);
  });
});
