/**
 * Who the app is to Entra ID: its managed identity (`ManagedIdentityCredential`; the user-assigned one named
 * by AZURE_CLIENT_ID, else the system-assigned one) — and, for a request's password-only credential, the
 * Entra ID token it carries (`StaticTokenCredential`), typically of another tenant.
 *
 * No authority host is involved: a managed identity gets its tokens from the platform's local endpoint
 * (IDENTITY_ENDPOINT in App Service and Functions, IMDS on VMs), which belongs to the app's own cloud. What
 * differs between clouds is the audience of the tokens (ACR_AUDIENCE, ARM_ENDPOINT).
 */
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import { AzureError } from './errors.js';
import { jwtExpiry } from './jwt.js';

export interface IdentitySettings {
  /** Client ID of a user-assigned managed identity (AZURE_CLIENT_ID); absent: the system-assigned one. */
  readonly clientId?: string;
  /**
   * `managed` (default): the managed identity only (the service). `default`: DefaultAzureCredential — environment,
   * workload identity, managed identity, then `az login` and the other developer tools (the CLI's `--target-auth azure`).
   */
  readonly kind?: 'managed' | 'default';
}

/** How DefaultAzureCredential is named in messages. */
export const DEFAULT_CREDENTIAL_LABEL =
  'DefaultAzureCredential (environment, workload identity, managed identity, az login)';

export interface AppIdentity {
  readonly credential: TokenCredential;
  /** Who signs in, for messages: `the app's managed identity (client ID …)`. Never a secret. */
  readonly label: string;
  /** Identifies the identity for caches (client ID or `system`). */
  readonly key: string;
}

/** One credential per identity and process: @azure/identity (MSAL) caches its Entra ID tokens. */
const identities = new Map<string, AppIdentity>();

export function appIdentity(s: IdentitySettings = {}): AppIdentity {
  const key = `${s.kind === 'default' ? 'default:' : ''}${s.clientId ?? 'system'}`;
  let identity = identities.get(key);
  if (!identity) {
    identity =
      s.kind === 'default'
        ? {
            credential: new LazyCredential(async () => {
              const { DefaultAzureCredential } = await import('@azure/identity');
              return new DefaultAzureCredential(s.clientId ? { managedIdentityClientId: s.clientId } : {});
            }),
            label: DEFAULT_CREDENTIAL_LABEL,
            key,
          }
        : {
            credential: new LazyCredential(async () => {
              const { ManagedIdentityCredential } = await import('@azure/identity');
              return new ManagedIdentityCredential(s.clientId ? { clientId: s.clientId } : {});
            }),
            label: s.clientId
              ? `the app's managed identity (client ID ${s.clientId})`
              : "the app's system-assigned managed identity",
            key,
          };
    identities.set(key, identity);
  }
  return identity;
}

/**
 * An @azure/identity credential, loaded on the first token asked for: the library takes about a third of a
 * second to load, which every CLI run would otherwise pay, Azure or not.
 */
export class LazyCredential implements TokenCredential {
  private inner?: Promise<TokenCredential>;
  /** Requests for the same scopes at once share one (source and target often sign in together). */
  private readonly inflight = new Map<string, Promise<AccessToken | null>>();

  constructor(private readonly make: () => Promise<TokenCredential>) {}

  getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    const key = [scopes].flat().sort().join(' ');
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.fetch(scopes, options).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }

  private async fetch(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    this.inner ??= this.make();
    return (await this.inner).getToken(scopes, options);
  }
}

/** How a password-only credential's token is named in messages. */
export const STATIC_TOKEN_LABEL = 'the Entra ID token given as password';

/**
 * A fixed Entra ID access token (a request's password without username): handed out until it expires,
 * then refused with a message saying how to get a new one.
 */
export class StaticTokenCredential implements TokenCredential {
  constructor(
    private readonly token: string,
    private readonly now: () => number = Date.now,
  ) {}

  async getToken(): Promise<AccessToken> {
    const expiresAt = jwtExpiry(this.token);
    if (expiresAt !== undefined && expiresAt <= this.now()) {
      throw new AzureError(
        'TOKEN_EXPIRED',
        `${STATIC_TOKEN_LABEL} expired at ${new Date(expiresAt).toISOString()}: get a new one for the registry's tenant (az account get-access-token --resource https://containerregistry.azure.net --tenant <tenant ID>) and import again`,
      );
    }
    // An opaque token: the registry's exchange decides; an hour is what Entra ID tokens usually live.
    return { token: this.token, expiresOnTimestamp: expiresAt ?? this.now() + 3_600_000, tokenType: 'Bearer' };
  }
}
