/**
 * The CLI's Entra ID sign-in to a deployed service with AUTH_MODE=entra (`--scope` / OCI_IMPORT_SCOPE): an access
 * token for that scope from @azure/identity's DefaultAzureCredential — environment (a service principal),
 * workload identity (GitHub Actions' federated credential), managed identity, then `az login` and the other
 * developer tools; `AZURE_TOKEN_CREDENTIALS` narrows the chain as the library documents. One token per run,
 * fetched again only when it is about to expire. The library is loaded only when a scope is given.
 */
import type { AccessToken, TokenCredential } from '@azure/identity';
import { OciImportError } from '../errors.js';

/** A token with less than this left is fetched again. */
const REFRESH_MARGIN_MS = 120_000;

/** `api://<app>/.default`, `<client id>/.default`, `https://…/.default` or a single scope: no spaces, no quotes. */
export function checkScope(scope: string): string {
  const s = scope.trim();
  if (!/^[\x21-\x7e]{1,512}$/.test(s) || /["'\\]/.test(s)) {
    throw new OciImportError(
      'USAGE',
      `--scope "${scope.slice(0, 80)}" is not a scope; give the service's application ID URI with /.default, e.g. api://oci-import/.default`,
    );
  }
  return s;
}

/** A function handing out a bearer token for `scope`, cached for the run. */
export function bearerSource(scope: string, credential?: TokenCredential): () => Promise<string> {
  let token: AccessToken | undefined;
  let pending: Promise<AccessToken> | undefined;
  const fetchToken = async (): Promise<AccessToken> => {
    const chain = credential ?? new (await import('@azure/identity')).DefaultAzureCredential();
    let got: AccessToken | null;
    try {
      got = await chain.getToken(scope);
    } catch (err) {
      const why = (err as Error).message.replace(/\s+/g, ' ').slice(0, 600);
      throw new OciImportError(
        'SIGN_IN_FAILED',
        `no Entra ID token for ${scope} from DefaultAzureCredential (environment, workload identity, managed identity, az login): ${why}`,
      );
    }
    if (!got) throw new OciImportError('SIGN_IN_FAILED', `DefaultAzureCredential returned no token for ${scope}`);
    return got;
  };
  return async () => {
    if (token && token.expiresOnTimestamp - REFRESH_MARGIN_MS > Date.now()) return token.token;
    pending ??= fetchToken().finally(() => {
      pending = undefined;
    });
    token = await pending;
    return token.token;
  };
}
