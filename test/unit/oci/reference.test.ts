import { describe, expect, it } from 'vitest';
import { parseDigest } from '../../../lib/oci/digest.js';
import {
  DOCKER_HUB_REGISTRY,
  InvalidReferenceError,
  formatReference,
  normalizeRegistry,
  parseReference,
  parseRepositoryTag,
  validateRegistry,
  validateRepository,
  validateTag,
  type Reference,
} from '../../../lib/oci/reference.js';

const HEX = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const D = parseDigest(`sha256:${HEX}`);
const D512 = parseDigest(`sha512:${'ab'.repeat(64)}`);
const HUB = DOCKER_HUB_REGISTRY;
const TAG128 = `v${'1'.repeat(127)}`;

/** Runs `fn`, asserts it threw an InvalidReferenceError for `input`, and returns it. */
function referenceError(fn: () => unknown, input: string): InvalidReferenceError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(InvalidReferenceError);
  const error = caught as InvalidReferenceError;
  expect(error.code).toBe('INVALID_REFERENCE');
  expect(error.name).toBe('InvalidReferenceError');
  expect(error.input).toBe(input);
  expect(error.message.startsWith(`invalid reference ${JSON.stringify(input).slice(0, 40)}`)).toBe(true);
  expect(error.message.endsWith(error.reason)).toBe(true);
  return error;
}

const valid: [input: string, expected: Reference][] = [
  // Docker Hub, short forms
  ['nginx', { registry: HUB, repository: 'library/nginx' }],
  ['nginx:1.27', { registry: HUB, repository: 'library/nginx', tag: '1.27' }],
  ['nginx:latest', { registry: HUB, repository: 'library/nginx', tag: 'latest' }],
  ['nginx:1', { registry: HUB, repository: 'library/nginx', tag: '1' }],
  ['library/nginx', { registry: HUB, repository: 'library/nginx' }],
  ['library/nginx:1.27-alpine', { registry: HUB, repository: 'library/nginx', tag: '1.27-alpine' }],
  ['bitnami/redis:7.2', { registry: HUB, repository: 'bitnami/redis', tag: '7.2' }],
  ['org/team/app', { registry: HUB, repository: 'org/team/app' }],
  [`nginx@sha256:${HEX}`, { registry: HUB, repository: 'library/nginx', digest: D }],
  [`nginx:1.27@sha256:${HEX}`, { registry: HUB, repository: 'library/nginx', tag: '1.27', digest: D }],
  // Docker Hub aliases
  ['docker.io/library/nginx:1.27', { registry: HUB, repository: 'library/nginx', tag: '1.27' }],
  ['docker.io/nginx', { registry: HUB, repository: 'library/nginx' }],
  ['docker.io/bitnami/redis', { registry: HUB, repository: 'bitnami/redis' }],
  ['index.docker.io/library/nginx', { registry: HUB, repository: 'library/nginx' }],
  ['index.docker.io/nginx:stable', { registry: HUB, repository: 'library/nginx', tag: 'stable' }],
  ['registry-1.docker.io/library/nginx', { registry: HUB, repository: 'library/nginx' }],
  ['registry-1.docker.io/alpine', { registry: HUB, repository: 'library/alpine' }],
  ['DOCKER.IO/library/nginx', { registry: HUB, repository: 'library/nginx' }],
  // Other registries
  ['ghcr.io/org/app', { registry: 'ghcr.io', repository: 'org/app' }],
  [`ghcr.io/org/app@sha256:${HEX}`, { registry: 'ghcr.io', repository: 'org/app', digest: D }],
  [`ghcr.io/org/app@sha512:${'ab'.repeat(64)}`, { registry: 'ghcr.io', repository: 'org/app', digest: D512 }],
  ['ghcr.io/org/team/sub/app:v1.2.3', { registry: 'ghcr.io', repository: 'org/team/sub/app', tag: 'v1.2.3' }],
  ['ghcr.io/app', { registry: 'ghcr.io', repository: 'app' }],
  [`host:5000/a/b:tag@sha256:${HEX}`, { registry: 'host:5000', repository: 'a/b', tag: 'tag', digest: D }],
  [
    'myreg.azurecr.io/samples/hello-world:v1',
    { registry: 'myreg.azurecr.io', repository: 'samples/hello-world', tag: 'v1' },
  ],
  [
    '123456789012.dkr.ecr.us-east-1.amazonaws.com/app:latest',
    { registry: '123456789012.dkr.ecr.us-east-1.amazonaws.com', repository: 'app', tag: 'latest' },
  ],
  [
    'europe-docker.pkg.dev/proj/repo/img:1',
    { registry: 'europe-docker.pkg.dev', repository: 'proj/repo/img', tag: '1' },
  ],
  [
    'quay.io/prometheus/node-exporter:v1.8.0',
    { registry: 'quay.io', repository: 'prometheus/node-exporter', tag: 'v1.8.0' },
  ],
  ['mcr.microsoft.com/dotnet/aspnet:8.0', { registry: 'mcr.microsoft.com', repository: 'dotnet/aspnet', tag: '8.0' }],
  ['Registry.Example.COM:5000/x', { registry: 'registry.example.com:5000', repository: 'x' }],
  ['a.b/x', { registry: 'a.b', repository: 'x' }],
  ['xn--bcher-kva.example/app', { registry: 'xn--bcher-kva.example', repository: 'app' }],
  ['ghcr.io:443/org/app', { registry: 'ghcr.io:443', repository: 'org/app' }],
  // localhost and IP addresses
  ['localhost/x', { registry: 'localhost', repository: 'x' }],
  ['localhost:5000/x:dev', { registry: 'localhost:5000', repository: 'x', tag: 'dev' }],
  ['127.0.0.1:5000/x', { registry: '127.0.0.1:5000', repository: 'x' }],
  ['127.0.0.1/x', { registry: '127.0.0.1', repository: 'x' }],
  ['10.0.0.1:5000/internal/app', { registry: '10.0.0.1:5000', repository: 'internal/app' }],
  ['169.254.169.254/x', { registry: '169.254.169.254', repository: 'x' }],
  ['[::1]:5000/x', { registry: '[::1]:5000', repository: 'x' }],
  ['[::1]/x', { registry: '[::1]', repository: 'x' }],
  ['[2001:DB8::1]:443/team/app:1', { registry: '[2001:db8::1]:443', repository: 'team/app', tag: '1' }],
  ['[::ffff:192.0.2.1]:5000/x', { registry: '[::ffff:192.0.2.1]:5000', repository: 'x' }],
  // Ports at the edges of the range
  ['host:1/x', { registry: 'host:1', repository: 'x' }],
  ['host:65535/x', { registry: 'host:65535', repository: 'x' }],
  // Repository and tag grammar edges
  ['ghcr.io/a__b/c.d/e---f/g_h', { registry: 'ghcr.io', repository: 'a__b/c.d/e---f/g_h' }],
  ['ghcr.io/a0/1b/2', { registry: 'ghcr.io', repository: 'a0/1b/2' }],
  [`ghcr.io/x:${TAG128}`, { registry: 'ghcr.io', repository: 'x', tag: TAG128 }],
  ['ghcr.io/x:_underscore', { registry: 'ghcr.io', repository: 'x', tag: '_underscore' }],
  ['ghcr.io/x:UPPER.case-Tag_1', { registry: 'ghcr.io', repository: 'x', tag: 'UPPER.case-Tag_1' }],
  // docker's rule: without "/" there is no registry, so these are Docker Hub repositories
  ['localhost', { registry: HUB, repository: 'library/localhost' }],
  ['localhost:5000', { registry: HUB, repository: 'library/localhost', tag: '5000' }],
  ['ghcr.io', { registry: HUB, repository: 'library/ghcr.io' }],
];

describe('parseReference: valid references', () => {
  it('has at least 40 cases', () => expect(valid.length).toBeGreaterThanOrEqual(40));

  it.each(valid)('%s', (input, expected) => {
    const ref = parseReference(input);
    expect(ref).toStrictEqual(expected);
    expect(Object.isFrozen(ref)).toBe(true);
  });

  it.each(valid)('%s survives formatReference → parseReference', (input) => {
    const ref = parseReference(input);
    expect(parseReference(formatReference(ref))).toStrictEqual(ref);
  });
});

describe('parseReference: defaultRegistry', () => {
  it.each([
    ['app:1', 'myreg.azurecr.io', { registry: 'myreg.azurecr.io', repository: 'app', tag: '1' }],
    ['team/app', 'MyReg.AzureCR.io', { registry: 'myreg.azurecr.io', repository: 'team/app' }],
    ['x', 'localhost:5000', { registry: 'localhost:5000', repository: 'x' }],
    ['nginx', 'docker.io', { registry: HUB, repository: 'library/nginx' }],
    ['nginx', '', { registry: HUB, repository: 'library/nginx' }],
    ['ghcr.io/org/app', 'myreg.azurecr.io', { registry: 'ghcr.io', repository: 'org/app' }],
  ] satisfies [string, string, Reference][])('%s with default %s', (input, defaultRegistry, expected) => {
    expect(parseReference(input, { defaultRegistry })).toStrictEqual(expected);
  });

  it.each([
    ['https://myreg.azurecr.io', 'default registry "https://myreg.azurecr.io" is invalid'],
    ['host:0', 'default registry "host:0" is invalid: port 0 is out of range 1-65535'],
  ])('rejects an invalid default %s', (defaultRegistry, fragment) => {
    const error = referenceError(() => parseReference('app', { defaultRegistry }), 'app');
    expect(error.reason).toContain(fragment);
  });
});

const invalid: [label: string, input: string, fragment: string][] = [
  ['empty', '', 'empty reference'],
  ['uppercase repository', 'NGINX', 'repository must be lowercase'],
  ['uppercase path with a hint', 'ghcr.io/Org/App', 'repository must be lowercase (did you mean "org/app"?)'],
  ['".." component', 'ghcr.io/a/../b', 'path component ".." is not allowed'],
  ['"." component', 'ghcr.io/./b', 'path component "." is not allowed'],
  ['trailing "/"', 'nginx/', 'repository must not end with "/"'],
  ['trailing "/" after a registry path', 'ghcr.io/org/', 'repository must not end with "/"'],
  ['leading "/"', '/nginx', 'repository must not start with "/"'],
  ['"//"', 'a//b', 'empty path component ("//")'],
  ['registry without repository', 'ghcr.io/', 'empty repository; add one after the registry'],
  ['tag without repository', ':1.0', 'empty repository'],
  ['digest without repository', `@sha256:${HEX}`, 'empty repository'],
  ['":" without tag', 'nginx:', '":" must be followed by a tag'],
  [
    'tag of 129 characters',
    `nginx:${'a'.repeat(129)}`,
    'at most 128 characters of [A-Za-z0-9_.-], not starting with . or - (it has 129 characters)',
  ],
  [
    'tag starting with "."',
    'nginx:.hidden',
    'is invalid: at most 128 characters of [A-Za-z0-9_.-], not starting with . or - (it starts with ".")',
  ],
  ['tag starting with "-"', 'nginx:-rc', '(it starts with "-")'],
  ['tag with "+"', 'nginx:1.0+build', 'tag "1.0+build" is invalid'],
  ['tag with a second ":"', 'nginx:1:2', '(it contains ":")'],
  ['short digest', 'nginx@sha256:abc', 'digest "sha256:abc" is invalid: sha256 needs 64 hex characters, got 3'],
  ['uppercase hex digest', `nginx@sha256:${HEX.toUpperCase()}`, 'hex must be lowercase'],
  ['sha1 digest', 'nginx@sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709', 'unsupported algorithm "sha1"'],
  ['digest without algorithm', `nginx@${HEX}`, 'missing algorithm prefix'],
  ['"@" without digest', 'nginx@', '"@" must be followed by a digest'],
  ['"@" twice', `nginx@sha256:${HEX}@sha256:${HEX}`, 'a reference may contain at most one "@"'],
  ['"@" twice, short', 'a@b@c', 'a reference may contain at most one "@"'],
  ['credentials', 'user:pass@ghcr.io/app', 'credentials ("user@host") cannot be part of a reference'],
  ['a bare digest', `sha256:${HEX}`, 'a digest alone is not a reference'],
  ['space inside', 'ngi nx', 'whitespace is not allowed (a space at position 4)'],
  ['leading space', ' nginx', 'whitespace is not allowed'],
  ['trailing newline', 'nginx:1.27\n', 'whitespace is not allowed (a newline at position 11)'],
  ['tab', 'nginx\t:1', 'whitespace is not allowed (a tab'],
  ['no-break space', 'nginx\u00a0', 'whitespace is not allowed (U+00A0'],
  ['unicode letter', 'ngïnx', 'non-ASCII character "ï" (U+00EF) at position 3 is not allowed'],
  ['unicode hyphen look-alike', 'nginx:1.0\u2010beta', 'non-ASCII character "\u2010" (U+2010)'],
  ['emoji', 'ghcr.io/app:🚀', 'non-ASCII character "🚀" (U+1F680)'],
  ['control character', 'nginx\u0000', 'control character U+0000 at position 6'],
  ['http:// scheme', 'http://ghcr.io/org/app', 'drop the "http://" prefix'],
  [
    'https:// scheme',
    'https://myreg.azurecr.io/app:1',
    'drop the "https://" prefix: a reference is "registry/repository[:tag][@digest]", not a URL',
  ],
  ['docker:// transport', 'docker://nginx', 'drop the "docker://" prefix'],
  ['port 0', 'host:0/x', 'registry "host:0" is invalid: port 0 is out of range 1-65535'],
  ['port 70000', 'host:70000/x', 'port 70000 is out of range 1-65535'],
  ['non-numeric port', 'host:http/x', 'port "http" must be a number from 1 to 65535'],
  ['empty port', 'host:/x', 'missing port number after ":"'],
  ['unbracketed IPv6', '::1/x', 'an IPv6 address must be written in brackets, e.g. "[::1]:5000"'],
  ['unclosed IPv6 bracket', '[::1/x', 'IPv6 address is missing its closing "]"'],
  ['invalid IPv6', '[::g]:5000/x', '"::g" is not a valid IPv6 address'],
  ['IPv6 zone', '[fe80::1%eth0]:5000/x', 'IPv6 zone identifiers'],
  ['junk after IPv6', '[::1]x/y', 'only ":<port>" may follow "]"'],
  ['IPv6 registry without repository', '[::1]:5000', 'a registry host needs a repository after it'],
  ['IPv4 octet above 255', '256.1.1.1/x', '"256.1.1.1" is not a valid IPv4 address'],
  ['underscore in host', 'my_reg.example.com/x', 'character "_" is not allowed in host name'],
  ['host label starting with "-"', '-bad.example.com/x', 'host name label "-bad" must not start or end with "-"'],
  ['empty host label', 'a..b/x', 'has an empty label'],
  ['"!" in repository', 'ghcr.io/org/app!', 'character "!" is not allowed in a repository'],
  [
    'component starting with "-"',
    'ghcr.io/-app',
    'path component "-app" must start and end with a lowercase letter or digit',
  ],
  ['three underscores', 'ghcr.io/a___b', 'path component "a___b" has an invalid separator'],
  ['mixed separators', 'ghcr.io/a.-b', 'has an invalid separator'],
  ['repository over 255', 'a'.repeat(256), 'repository is 256 characters long; at most 255 are allowed'],
  [
    'name over 255',
    `ghcr.io/${'a'.repeat(250)}`,
    'name is 258 characters long; registry, "/" and repository together may have at most 255',
  ],
];

describe('parseReference: invalid references', () => {
  it('has at least 30 cases', () => expect(invalid.length).toBeGreaterThanOrEqual(30));

  it.each(invalid)('%s', (_label, input, fragment) => {
    const error = referenceError(() => parseReference(input), input);
    expect(error.reason).toContain(fragment);
  });

  it('quotes the input in the message', () => {
    expect(() => parseReference('NGINX')).toThrow('invalid reference "NGINX": repository must be lowercase');
  });
});

describe('parseRepositoryTag', () => {
  it.each([
    ['nginx:1.27', { repository: 'nginx', tag: '1.27' }],
    ['nginx', { repository: 'nginx' }],
    ['team/app', { repository: 'team/app' }],
    ['a/b/c:v1', { repository: 'a/b/c', tag: 'v1' }],
    [`app@sha256:${HEX}`, { repository: 'app', digest: D }],
    [`team/app:v1@sha256:${HEX}`, { repository: 'team/app', tag: 'v1', digest: D }],
    ['localhost', { repository: 'localhost' }],
  ] satisfies [string, ReturnType<typeof parseRepositoryTag>][])('%s', (input, expected) => {
    expect(parseRepositoryTag(input)).toStrictEqual(expected);
  });

  it.each([
    [
      'ghcr.io/org/app:1.0',
      'the target image must not contain a registry host; use --target for "ghcr.io" and give only "org/app:1.0" here',
    ],
    ['localhost/x', 'the target image must not contain a registry host; use --target'],
    ['host:5000/x', 'use --target for "host:5000"'],
    ['docker.io/library/nginx', 'must not contain a registry host'],
    ['', 'empty image name'],
    ['App', 'repository must be lowercase'],
    ['app:', '":" must be followed by a tag'],
    ['app@sha256:abc', 'sha256 needs 64 hex characters, got 3'],
    ['team/ app', 'whitespace is not allowed'],
    ['https://myreg.azurecr.io/app', 'drop the "https://" prefix'],
    ['team//app', 'empty path component'],
  ])('rejects %s', (input, fragment) => {
    const error = referenceError(() => parseRepositoryTag(input), input);
    expect(error.reason).toContain(fragment);
  });
});

describe('validateRepository / validateTag / validateRegistry', () => {
  it.each(['library/nginx', 'a', 'a/b-c/d_e/f.g', 'x'.repeat(255)])('repository %s is valid', (name) => {
    expect(() => validateRepository(name)).not.toThrow();
  });

  it.each([
    ['', 'empty repository'],
    ['Nginx', 'repository must be lowercase'],
    ['a/../b', 'path component ".." is not allowed'],
    ['x'.repeat(256), 'at most 255'],
  ])('repository %s is invalid', (name, fragment) => {
    expect(referenceError(() => validateRepository(name), name).reason).toContain(fragment);
  });

  it.each(['latest', '1.27', '_', 'A', TAG128])('tag %s is valid', (tag) => {
    expect(() => validateTag(tag)).not.toThrow();
  });

  it.each([
    ['', 'empty tag'],
    ['.x', 'it starts with "."'],
    [`${TAG128}x`, 'it has 129 characters'],
    ['a/b', 'it contains "/"'],
  ])('tag %s is invalid', (tag, fragment) => {
    expect(referenceError(() => validateTag(tag), tag).reason).toContain(fragment);
  });

  it.each(['ghcr.io', 'localhost:5000', '[::1]:5000', '127.0.0.1', 'myreg.azurecr.io'])(
    'registry %s is valid',
    (host) => {
      expect(() => validateRegistry(host)).not.toThrow();
    },
  );

  it.each([
    ['', 'empty registry host'],
    ['https://ghcr.io', 'drop the "https://" prefix'],
    ['ghcr.io/org', 'without "/"'],
    ['ghcr.io:99999', 'port 99999 is out of range'],
    ['ghcr io', 'whitespace is not allowed'],
  ])('registry %s is invalid', (host, fragment) => {
    expect(referenceError(() => validateRegistry(host), host).reason).toContain(fragment);
  });
});

describe('formatReference', () => {
  it.each([
    [{ registry: 'ghcr.io', repository: 'org/app' }, 'ghcr.io/org/app'],
    [{ registry: 'ghcr.io', repository: 'org/app', tag: '1' }, 'ghcr.io/org/app:1'],
    [{ registry: 'ghcr.io', repository: 'org/app', digest: D }, `ghcr.io/org/app@sha256:${HEX}`],
    [{ registry: 'host:5000', repository: 'a/b', tag: 't', digest: D }, `host:5000/a/b:t@sha256:${HEX}`],
    [{ registry: HUB, repository: 'library/nginx' }, 'registry-1.docker.io/library/nginx'],
    [{ registry: '[::1]:5000', repository: 'x' }, '[::1]:5000/x'],
  ] satisfies [Reference, string][])('formats %o', (ref, expected) => {
    expect(formatReference(ref)).toBe(expected);
  });
});

describe('normalizeRegistry', () => {
  it.each([
    ['docker.io', HUB],
    ['index.docker.io', HUB],
    ['registry-1.docker.io', HUB],
    ['Docker.IO', HUB],
    ['GHCR.io', 'ghcr.io'],
    ['localhost:5000', 'localhost:5000'],
    ['MyReg.azurecr.io:443', 'myreg.azurecr.io:443'],
    ['[2001:DB8::1]:5000', '[2001:db8::1]:5000'],
  ])('%s → %s', (host, expected) => {
    expect(normalizeRegistry(host)).toBe(expected);
  });
});
