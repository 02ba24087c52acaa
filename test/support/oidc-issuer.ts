/**
 * A local OpenID Connect issuer standing in for Entra ID in tests: RSA keys made with `jose`, the tenant's
 * `/<tenant>/v2.0/.well-known/openid-configuration` and its JWKS served on 127.0.0.1, and access tokens signed
 * as Entra signs them (RS256, `kid` header, v2.0 or v1.0 issuer). A "foreign" key of the same shape is never
 * published: tokens signed with it must be refused.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export const TEST_TENANT = '7d3e1c2a-0b4f-4e5d-9a8b-1c2d3e4f5a6b';
export const TEST_AUDIENCE = 'api://oci-import-test';
export const TEST_CLIENT_ID = '4b1f0c9e-2d3a-4e5f-8a7b-6c5d4e3f2a1b';

interface Key {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
}

async function makeKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, use: 'sig', alg: 'RS256' } };
}

export interface SignOptions {
  /** Claims added to (or replacing) the defaults: iss (v2.0), aud, oid, azp, iat, nbf, exp (+1 h). */
  readonly claims?: JWTPayload;
  /** `foreign`: a key the issuer never published. */
  readonly key?: 'current' | 'foreign';
  /** Seconds from now the token expires (negative: already expired). */
  readonly expiresIn?: number;
  /** Claim names left out of the token. */
  readonly omit?: readonly string[];
}

export interface OidcIssuer {
  /** `http://127.0.0.1:PORT`: ENTRA_AUTHORITY_HOST. */
  readonly url: string;
  readonly tenant: string;
  /** The v2.0 issuer of this tenant. */
  readonly issuer: string;
  /** Requests to the JWKS so far. */
  jwksRequests(): number;
  /** Requests to the OpenID configuration so far. */
  configRequests(): number;
  sign(roles: readonly string[] | undefined, options?: SignOptions): Promise<string>;
  /** A new current signing key, published beside the old one (as Entra rolls keys). */
  rotate(): Promise<void>;
  close(): Promise<void>;
}

export async function startOidcIssuer(opts: { tenant?: string; audience?: string } = {}): Promise<OidcIssuer> {
  const tenant = opts.tenant ?? TEST_TENANT;
  const audience = opts.audience ?? TEST_AUDIENCE;
  // made up front: an RSA key takes long on a busy machine, and rotate() must not
  const [first, foreign, ...spare] = await Promise.all([
    makeKey('key-1'),
    makeKey('key-1'),
    makeKey('key-2'),
    makeKey('key-3'),
  ]);
  const published: Key[] = [first!];
  // `foreign` has the same kid as the first key: only the signature can tell it apart
  let generation = 1;
  let jwks = 0;
  let config = 0;
  let url = '';
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '';
    if (path === `/${tenant}/v2.0/.well-known/openid-configuration`) {
      config++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          issuer: `${url}/${tenant}/v2.0`,
          jwks_uri: `${url}/${tenant}/discovery/v2.0/keys`,
          authorization_endpoint: `${url}/${tenant}/oauth2/v2.0/authorize`,
          token_endpoint: `${url}/${tenant}/oauth2/v2.0/token`,
          id_token_signing_alg_values_supported: ['RS256'],
        }),
      );
      return;
    }
    if (path === `/${tenant}/discovery/v2.0/keys`) {
      jwks++;
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ keys: published.map((k) => k.jwk) }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = `${url}/${tenant}/v2.0`;

  const sign = async (roles: readonly string[] | undefined, o: SignOptions = {}): Promise<string> => {
    const key = o.key === 'foreign' ? foreign! : published[published.length - 1]!;
    const now = Math.floor(Date.now() / 1000);
    const payload: JWTPayload = {
      iss: issuer,
      aud: audience,
      iat: now,
      nbf: now,
      exp: now + (o.expiresIn ?? 3600),
      tid: tenant,
      ver: '2.0',
      oid: '11111111-2222-3333-4444-555555555555',
      azp: TEST_CLIENT_ID,
      sub: 'test-subject',
      ...(roles ? { roles: [...roles] } : {}),
      ...o.claims,
    };
    for (const name of o.omit ?? []) delete payload[name];
    return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' }).sign(key.privateKey);
  };

  return {
    url,
    tenant,
    issuer,
    sign,
    jwksRequests: () => jwks,
    configRequests: () => config,
    rotate: async () => {
      generation++;
      published.push(spare.shift() ?? (await makeKey(`key-${generation}`)));
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A token with `alg: none` and no signature (RFC 7519 section 6), carrying `payload`. */
export function unsignedToken(payload: JWTPayload): string {
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`;
}

/** An HS256 token keyed with `secret` (e.g. the issuer's public key material, the classic confusion attack). */
export async function hmacToken(payload: JWTPayload, secret: Uint8Array): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: 'HS256', kid: 'key-1', typ: 'JWT' }).sign(secret);
}
