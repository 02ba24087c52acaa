import { describe, expect, it } from 'vitest';
import { parseChallenges, parseScopes, type Challenge } from '../../../lib/oci/challenge.js';

const cases: [label: string, header: string | string[] | null | undefined, expected: Challenge[]][] = [
  [
    'Docker Hub',
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"',
    [
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/nginx:pull',
        },
      },
    ],
  ],
  [
    'Docker Hub /v2/ ping (no scope)',
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"',
    [{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io' } }],
  ],
  [
    'distribution 2.8 insufficient_scope (comma inside quotes)',
    'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team/app:pull,push",error="insufficient_scope"',
    [
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.example.com/token',
          service: 'registry.example.com',
          scope: 'repository:team/app:pull,push',
          error: 'insufficient_scope',
        },
      },
    ],
  ],
  [
    'distribution 2.8 invalid_token, multi-scope with host:port resource',
    'Bearer realm="https://auth.example.com/token",service="registry",scope="repository:localhost:5000/src:pull repository:dst:push,pull",error="invalid_token"',
    [
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.example.com/token',
          service: 'registry',
          scope: 'repository:localhost:5000/src:pull repository:dst:push,pull',
          error: 'invalid_token',
        },
      },
    ],
  ],
  [
    'ACR',
    'Bearer realm="https://myreg.azurecr.io/oauth2/token",service="myreg.azurecr.io",scope="repository:samples/hello-world:pull"',
    [
      {
        scheme: 'bearer',
        params: {
          realm: 'https://myreg.azurecr.io/oauth2/token',
          service: 'myreg.azurecr.io',
          scope: 'repository:samples/hello-world:pull',
        },
      },
    ],
  ],
  [
    'ECR Basic',
    'Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"',
    [
      {
        scheme: 'basic',
        params: { realm: 'https://123456789012.dkr.ecr.us-east-1.amazonaws.com/', service: 'ecr.amazonaws.com' },
      },
    ],
  ],
  [
    'GHCR',
    'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull"',
    [
      {
        scheme: 'bearer',
        params: { realm: 'https://ghcr.io/token', service: 'ghcr.io', scope: 'repository:user/image:pull' },
      },
    ],
  ],
  [
    'Quay',
    'Bearer realm="https://quay.io/v2/auth",service="quay.io",scope="repository:prometheus/node-exporter:pull"',
    [
      {
        scheme: 'bearer',
        params: {
          realm: 'https://quay.io/v2/auth',
          service: 'quay.io',
          scope: 'repository:prometheus/node-exporter:pull',
        },
      },
    ],
  ],
  [
    'distribution htpasswd Basic',
    'Basic realm="Registry Realm"',
    [{ scheme: 'basic', params: { realm: 'Registry Realm' } }],
  ],
  [
    'two challenges in one header',
    'Basic realm="x", Bearer realm="y",service="z"',
    [
      { scheme: 'basic', params: { realm: 'x' } },
      { scheme: 'bearer', params: { realm: 'y', service: 'z' } },
    ],
  ],
  [
    'two header lines',
    ['Basic realm="Registry Realm"', 'Bearer realm="https://auth.example.com/token",service="registry"'],
    [
      { scheme: 'basic', params: { realm: 'Registry Realm' } },
      { scheme: 'bearer', params: { realm: 'https://auth.example.com/token', service: 'registry' } },
    ],
  ],
  [
    'lines joined by fetch (", ") with a param-less scheme in between',
    'Negotiate, Basic realm="a, b", Bearer realm="r"',
    [
      { scheme: 'negotiate', params: {} },
      { scheme: 'basic', params: { realm: 'a, b' } },
      { scheme: 'bearer', params: { realm: 'r' } },
    ],
  ],
  [
    'escaped quotes and backslashes',
    'Bearer realm="say \\"hi\\"",service="back\\\\slash",scope="a\\,b"',
    [{ scheme: 'bearer', params: { realm: 'say "hi"', service: 'back\\slash', scope: 'a,b' } }],
  ],
  [
    'unquoted token values',
    'Bearer realm=https://auth.example.com/token,service=registry.example.com,scope=repository:a:pull',
    [
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.example.com/token',
          service: 'registry.example.com',
          scope: 'repository:a:pull',
        },
      },
    ],
  ],
  [
    'extra whitespace and case',
    '  BEARER   Realm = "https://x/token" ,   SERVICE="y"  ,  ',
    [{ scheme: 'bearer', params: { realm: 'https://x/token', service: 'y' } }],
  ],
  [
    'empty list elements',
    ',, Basic realm="x",, ,service="s"',
    [{ scheme: 'basic', params: { realm: 'x', service: 's' } }],
  ],
  [
    'token68',
    'Negotiate YIIGhgYJKoZIhvcSAQICAQBuggZ1MIIGcaADAgEF==',
    [{ scheme: 'negotiate', params: { token68: 'YIIGhgYJKoZIhvcSAQICAQBuggZ1MIIGcaADAgEF==' } }],
  ],
  [
    'token68 followed by another challenge',
    'Negotiate abc=, Bearer realm="r"',
    [
      { scheme: 'negotiate', params: { token68: 'abc=' } },
      { scheme: 'bearer', params: { realm: 'r' } },
    ],
  ],
  ['empty quoted value', 'Bearer realm="r",error=""', [{ scheme: 'bearer', params: { realm: 'r', error: '' } }]],
  [
    'repeated parameter: first wins',
    'Bearer realm="first",realm="second"',
    [{ scheme: 'bearer', params: { realm: 'first' } }],
  ],
  [
    'unterminated quoted string runs to the end',
    'Bearer service="s",realm="https://x/tok, en',
    [{ scheme: 'bearer', params: { service: 's', realm: 'https://x/tok, en' } }],
  ],
  ['parameter without a scheme is dropped', 'realm="x"', []],
  [
    'junk is skipped up to the next comma',
    'Bearer realm="r" junk, service="s", ???, Basic',
    [
      { scheme: 'bearer', params: { realm: 'r', service: 's' } },
      { scheme: 'basic', params: {} },
    ],
  ],
  [
    '__proto__ is an ordinary key',
    'Bearer __proto__="x",realm="r"',
    [{ scheme: 'bearer', params: JSON.parse('{"__proto__":"x","realm":"r"}') as Record<string, string> }],
  ],
  ['empty string', '', []],
  ['only whitespace', '   ', []],
  ['empty array', [], []],
  ['null', null, []],
  ['undefined', undefined, []],
];

describe('parseChallenges', () => {
  it.each(cases)('%s', (_label, header, expected) => {
    expect(parseChallenges(header)).toStrictEqual(expected);
  });

  it('keeps a "__proto__" parameter as an own property without touching the prototype', () => {
    const [challenge] = parseChallenges('Bearer __proto__="x"');
    expect(Object.getPrototypeOf(challenge?.params)).toBe(Object.prototype);
    expect(Object.hasOwn(challenge?.params ?? {}, '__proto__')).toBe(true);
  });
});

describe('parseScopes', () => {
  it.each([
    [undefined, []],
    ['', []],
    ['repository:library/nginx:pull', ['repository:library/nginx:pull']],
    ['repository:a:pull repository:b:pull,push', ['repository:a:pull', 'repository:b:pull,push']],
    ['  repository:a:pull   registry:catalog:*  ', ['repository:a:pull', 'registry:catalog:*']],
    ['repository:localhost:5000/x:pull', ['repository:localhost:5000/x:pull']],
    ['repository:a:pull repository:a:pull', ['repository:a:pull']],
    ['repository(plugin):p:pull\trepository:b:push', ['repository(plugin):p:pull', 'repository:b:push']],
  ] satisfies [string | undefined, string[]][])('%j', (scope, expected) => {
    expect(parseScopes(scope)).toStrictEqual(expected);
  });

  it('splits the scope of a distribution challenge', () => {
    const [challenge] = parseChallenges(
      'Bearer realm="r",service="s",scope="repository:src:pull repository:dst:push,pull",error="insufficient_scope"',
    );
    expect(parseScopes(challenge?.params.scope)).toStrictEqual(['repository:src:pull', 'repository:dst:push,pull']);
  });
});
