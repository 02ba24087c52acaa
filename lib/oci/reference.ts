/**
 * Image references (`ghcr.io/org/app:1.0@sha256:…`): parsing, validation and formatting. Pure, no I/O.
 *
 * Grammar accepted by {@link parseReference} (tokens in UPPERCASE are final):
 *
 * ```text
 * reference  ::= [ registry "/" ] repository [ ":" TAG ] [ "@" DIGEST ]
 * registry   ::= host [ ":" PORT ]                      PORT: 1-65535
 * host       ::= DNS-NAME | IPV4 | "[" IPV6 "]"         DNS-NAME: labels [A-Za-z0-9-], no "-" at either end
 * repository ::= COMPONENT *( "/" COMPONENT )           COMPONENT: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
 * TAG        ::= [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
 * DIGEST     ::= "sha256:" 64 lowercase hex | "sha512:" 128 lowercase hex
 * ```
 *
 * Valid forms (the first "/"-separated component is the registry only if it looks like a host, see below):
 *
 * ```text
 * nginx                          → registry-1.docker.io / library/nginx         (no tag, no digest)
 * nginx:1.27                     → registry-1.docker.io / library/nginx : 1.27
 * ghcr.io/org/app@sha256:…       → ghcr.io / org/app @ sha256:…
 * host:5000/a/b:tag@sha256:…     → host:5000 / a/b : tag @ sha256:…             (tag and digest both kept)
 * ```
 *
 * Decisions, and why:
 * - **Registry detection** follows docker (`distribution/reference` `splitDockerDomain`, go-containerregistry
 *   `pkg/name/repository.go`): the first component is a host iff it contains "." or ":" or is "localhost".
 *   Users paste references produced by docker, so the same string must mean the same image here.
 * - **Docker Hub** is addressed by its API host {@link DOCKER_HUB_REGISTRY}; `docker.io` is only a name
 *   (research oci.md §6.3, pitfall 23). One-segment names there are official images under `library/`.
 * - **No default tag.** `latest` is a policy (a copy tool may prefer to refuse untagged sources), so callers decide.
 * - **Tag and digest together are both kept**, unlike oras-go (which drops the tag): the digest pins the content,
 *   the tag is still useful as the target tag of a copy.
 * - **Validation is client-side and strict** (distribution spec v1.1.1 "Pulling manifests" grammar), so a typo
 *   fails before any network call with a message naming the exact problem, rather than as a registry's 400/404.
 * - **Addresses are not policed here**: `169.254.169.254/x` parses. Whether a host may be contacted (SSRF guards)
 *   is a network policy decision that belongs with the transport, not with syntax.
 *
 * References:
 *   - https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#pulling-manifests
 *   - oras-go `registry/reference.go` (BNF and "valid forms"), go-containerregistry `pkg/name`
 *
 * @module
 */

import { OciImportError } from '../errors.js';
import { isIPv4, isIPv6 } from 'node:net';
import { InvalidDigestError, isDigest, parseDigest, type Digest } from './digest.js';

/** Docker Hub's API host. `docker.io` and `index.docker.io` are normalised to it by {@link normalizeRegistry}. */
export const DOCKER_HUB_REGISTRY = 'registry-1.docker.io';

/** Names by which users refer to Docker Hub; all of them serve the same content. */
const DOCKER_HUB_ALIASES: ReadonlySet<string> = new Set(['docker.io', 'index.docker.io', DOCKER_HUB_REGISTRY]);

/** Namespace of Docker Hub's official images (`nginx` is really `library/nginx`). */
const DOCKER_HUB_NAMESPACE = 'library';

/**
 * Limit on "host/repository" enforced by docker and distribution (`NameTotalLengthMax`); the distribution spec
 * notes that "many clients impose a limit of 255 characters" on that concatenation.
 */
const NAME_TOTAL_LENGTH_MAX = 255;

const REPOSITORY_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const TAG_RULE = 'at most 128 characters of [A-Za-z0-9_.-], not starting with . or -';
const DNS_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;

/** A parsed image reference. Immutable; fields that were not in the input are absent (not empty strings). */
export interface Reference {
  /** API host, lowercased, with port if given: `ghcr.io`, `localhost:5000`, `[::1]:5000`, {@link DOCKER_HUB_REGISTRY}. */
  readonly registry: string;
  /** Repository path inside the registry, e.g. `library/nginx`, `org/team/app`. */
  readonly repository: string;
  /** Tag, if the input had one. `latest` is never filled in here. */
  readonly tag?: string;
  /** Digest, if the input had one; it pins the content even when a tag is present. */
  readonly digest?: Digest;
}

/**
 * Thrown when a reference, repository, tag or registry is malformed. The message has the form
 * `invalid reference "<input>": <reason>`; `reason` alone is kept for callers that build their own message
 * (e.g. to say which CLI option was wrong).
 */
export class InvalidReferenceError extends OciImportError {
  override name = 'InvalidReferenceError';

  constructor(
    readonly input: string,
    readonly reason: string,
  ) {
    super('INVALID_REFERENCE', `invalid reference ${quote(input)}: ${reason}`, { side: 'request' });
  }
}

/**
 * Parses an image reference such as `nginx`, `nginx:1.27`, `docker.io/library/nginx:1.27`,
 * `ghcr.io/org/app@sha256:…`, `host:5000/a/b:tag@sha256:…`, `localhost/x`, `127.0.0.1:5000/x` or `[::1]:5000/x`.
 *
 * @param options.defaultRegistry Registry to use when the input names none (instead of Docker Hub), e.g. the
 *   `--source-registry` of a CLI. Normalised like an explicit one; an empty string counts as not given.
 * @throws {InvalidReferenceError} with a reason naming the first problem found.
 */
export function parseReference(input: string, options: { defaultRegistry?: string } = {}): Reference {
  const fail: Fail = failFor(input);
  if (input === '') fail('empty reference; expected e.g. "nginx:1.27" or "ghcr.io/org/app@sha256:<hex>"');
  checkCharacters(input, fail);
  if (isDigest(input)) {
    fail('a digest alone is not a reference; put the image in front of it, e.g. "ghcr.io/org/app@' + input + '"');
  }
  if (input.startsWith('[') && !input.includes('/')) {
    fail('a registry host needs a repository after it, e.g. "[::1]:5000/app"');
  }

  const { name, tag, digest } = splitTagAndDigest(input, fail);
  const { host, path } = splitRegistry(name);

  let registry: string;
  if (host !== undefined) {
    const problem = registryProblem(host);
    if (problem !== undefined) fail(`registry ${quote(host)} is invalid: ${problem}`);
    if (path === '') fail(`empty repository; add one after the registry, e.g. "${host}/org/app"`);
    registry = normalizeRegistry(host);
  } else if (options.defaultRegistry !== undefined && options.defaultRegistry !== '') {
    const problem = registryProblem(options.defaultRegistry);
    if (problem !== undefined) fail(`default registry ${quote(options.defaultRegistry)} is invalid: ${problem}`);
    registry = normalizeRegistry(options.defaultRegistry);
  } else {
    registry = DOCKER_HUB_REGISTRY;
  }

  const problem = repositoryProblem(path);
  if (problem !== undefined) fail(problem);

  const repository = registry === DOCKER_HUB_REGISTRY && !path.includes('/') ? `${DOCKER_HUB_NAMESPACE}/${path}` : path;

  // Measured the way docker measures it, so that exactly the names docker accepts are accepted:
  // Docker Hub names count as "docker.io/…", not as the longer API host.
  const fullName = `${registry === DOCKER_HUB_REGISTRY ? 'docker.io' : registry}/${repository}`;
  if (fullName.length > NAME_TOTAL_LENGTH_MAX) {
    fail(
      `name is ${fullName.length} characters long; registry, "/" and repository together may have at most ${NAME_TOTAL_LENGTH_MAX}`,
    );
  }

  return Object.freeze({
    registry,
    repository,
    ...(tag !== undefined && { tag }),
    ...(digest !== undefined && { digest }),
  });
}

/**
 * Parses a target image name in the style of `az acr import --image`: `nginx:1.27`, `team/app`, `app@sha256:…`.
 *
 * The registry comes from a separate option, so a host here is an error rather than silently winning over it,
 * and no `library/` is added (that is a Docker Hub convention, and the target is the user's own registry).
 *
 * @throws {InvalidReferenceError}
 */
export function parseRepositoryTag(input: string): { repository: string; tag?: string; digest?: Digest } {
  const fail: Fail = failFor(input);
  if (input === '') fail('empty image name; expected e.g. "team/app:1.0"');
  checkCharacters(input, fail);

  const { name, tag, digest } = splitTagAndDigest(input, fail);
  const { host, path } = splitRegistry(name);
  if (host !== undefined) {
    const rest = `${path}${tag !== undefined ? `:${tag}` : ''}${digest !== undefined ? `@${digest}` : ''}`;
    fail(
      `the target image must not contain a registry host; use --target for ${quote(host)} and give only ${quote(rest)} here`,
    );
  }
  const problem = repositoryProblem(path);
  if (problem !== undefined) fail(problem);

  // Not frozen, unlike parseReference: the declared type is mutable, so callers may fill in a default tag.
  return {
    repository: path,
    ...(tag !== undefined && { tag }),
    ...(digest !== undefined && { digest }),
  };
}

/**
 * Checks a repository path against the distribution-spec grammar (lowercase components joined by "/",
 * at most 255 characters). No `library/` handling: pass the repository as it will appear in API URLs.
 *
 * @throws {InvalidReferenceError} with `input` set to `name`.
 */
export function validateRepository(name: string): void {
  const problem = repositoryProblem(name);
  if (problem !== undefined) throw new InvalidReferenceError(name, problem);
}

/**
 * Checks a tag against the distribution-spec grammar `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
 *
 * @throws {InvalidReferenceError} with `input` set to `tag`.
 */
export function validateTag(tag: string): void {
  const problem = tagProblem(tag);
  if (problem !== undefined) throw new InvalidReferenceError(tag, problem);
}

/**
 * Checks a registry host as written in a reference or a `--target` option: DNS name, IPv4 or bracketed IPv6,
 * optionally with `:port` (1-65535). A scheme (`https://`) or a path is refused.
 *
 * @throws {InvalidReferenceError} with `input` set to `host`.
 */
export function validateRegistry(host: string): void {
  const fail: Fail = failFor(host);
  checkCharacters(host, fail);
  if (host.includes('/')) {
    fail('a registry is a host name with an optional port, without "/"; put the repository in the image name');
  }
  const problem = registryProblem(host);
  if (problem !== undefined) fail(problem);
}

/** Formats a reference as `registry/repository[:tag][@digest]`, omitting the parts that are absent. */
export function formatReference(ref: Reference): string {
  let s = `${ref.registry}/${ref.repository}`;
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/**
 * Canonical form of a registry host, for use as a cache or credential key and in URLs: lowercased
 * (DNS is case-insensitive), port kept, and Docker Hub's aliases mapped to {@link DOCKER_HUB_REGISTRY}.
 * Does not validate; see {@link validateRegistry}.
 */
export function normalizeRegistry(host: string): string {
  const lower = host.toLowerCase();
  return DOCKER_HUB_ALIASES.has(lower) ? DOCKER_HUB_REGISTRY : lower;
}

// ---------------------------------------------------------------------------------------------------------------
// Internals. Each *Problem function returns the reason a value is invalid, or undefined; the exported functions
// turn reasons into InvalidReferenceError with the input the user actually typed.

type Fail = (reason: string) => never;

function failFor(input: string): Fail {
  return (reason) => {
    throw new InvalidReferenceError(input, reason);
  };
}

/**
 * Rejects what can never be part of a reference, before any splitting, so that the reason names the real
 * mistake (a pasted URL, a stray newline) rather than whatever grammar rule it happens to break first.
 */
function checkCharacters(input: string, fail: Fail): void {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(input);
  if (scheme !== null) {
    fail(
      `drop the "${scheme[1]}://" prefix: a reference is "registry/repository[:tag][@digest]", not a URL ` +
        `(the protocol is chosen by the client)`,
    );
  }
  let position = 0;
  for (const ch of input) {
    position += 1;
    const code = ch.codePointAt(0) ?? 0;
    if (/\s/u.test(ch)) fail(`whitespace is not allowed (${describeChar(ch)} at position ${position})`);
    if (code < 0x20 || code === 0x7f)
      fail(`control character ${describeChar(ch)} at position ${position} is not allowed`);
    if (code > 0x7e) {
      fail(`non-ASCII character ${describeChar(ch)} at position ${position} is not allowed; references are ASCII only`);
    }
  }
  const at = input.indexOf('@');
  if (at !== -1 && input.indexOf('@', at + 1) !== -1) {
    fail('a reference may contain at most one "@" (the one before the digest)');
  }
}

/** Splits `name[:tag][@digest]`. The tag ":" is the first one after the last "/", so a registry port is never a tag. */
function splitTagAndDigest(input: string, fail: Fail): { name: string; tag?: string; digest?: Digest } {
  let name = input;
  let digest: Digest | undefined;
  const at = input.indexOf('@');
  if (at !== -1) {
    name = input.slice(0, at);
    const digestText = input.slice(at + 1);
    if (digestText === '') fail('"@" must be followed by a digest such as "sha256:<64 hex characters>"');
    if (digestText.includes('/')) {
      fail(
        `"@" must be followed by a digest, not ${quote(digestText)}; credentials ("user@host") cannot be part of a reference`,
      );
    }
    try {
      digest = parseDigest(digestText);
    } catch (error) {
      if (error instanceof InvalidDigestError) fail(`digest ${quote(digestText)} is invalid: ${error.reason}`);
      throw error;
    }
  }

  let tag: string | undefined;
  const colon = name.indexOf(':', name.lastIndexOf('/') + 1);
  if (colon !== -1) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
    if (tag === '') fail('":" must be followed by a tag; remove the ":" to leave the tag unset');
    const problem = tagProblem(tag);
    if (problem !== undefined) fail(problem);
  }
  return { name, ...(tag !== undefined && { tag }), ...(digest !== undefined && { digest }) };
}

/** Docker's rule: the first component is a registry iff it contains "." or ":" or is "localhost". */
function splitRegistry(name: string): { host?: string; path: string } {
  const slash = name.indexOf('/');
  if (slash === -1) return { path: name };
  const first = name.slice(0, slash);
  if (first.includes('.') || first.includes(':') || first.toLowerCase() === 'localhost') {
    return { host: first, path: name.slice(slash + 1) };
  }
  return { path: name };
}

function repositoryProblem(repository: string): string | undefined {
  if (repository === '') return 'empty repository';
  if (repository.length > NAME_TOTAL_LENGTH_MAX) {
    return `repository is ${repository.length} characters long; at most ${NAME_TOTAL_LENGTH_MAX} are allowed`;
  }
  // Checked before the per-component grammar: it is by far the most common mistake, and the fix is obvious.
  if (/[A-Z]/.test(repository))
    return `repository must be lowercase (did you mean ${quote(repository.toLowerCase())}?)`;
  if (repository.startsWith('/')) return 'repository must not start with "/"';
  if (repository.endsWith('/')) return 'repository must not end with "/"';
  for (const component of repository.split('/')) {
    if (component === '') return 'empty path component ("//") in the repository';
    // Registries would resolve these in URL paths (/v2/a/../b/manifests/…) and address a different repository.
    if (component === '.' || component === '..') return `path component ${quote(component)} is not allowed`;
    const bad = /[^a-z0-9._-]/.exec(component);
    if (bad !== null) {
      return `character ${quote(bad[0])} is not allowed in a repository; use a-z, 0-9, ".", "_", "-", and "/" between path components`;
    }
    if (!REPOSITORY_COMPONENT.test(component)) {
      if (/^[._-]|[._-]$/.test(component)) {
        return `path component ${quote(component)} must start and end with a lowercase letter or digit`;
      }
      return `path component ${quote(component)} has an invalid separator; between letters and digits use one ".", one or two "_", or any number of "-"`;
    }
  }
  return undefined;
}

function tagProblem(tag: string): string | undefined {
  if (tag === '') return 'empty tag';
  if (TAG.test(tag)) return undefined;
  let detail: string;
  if (tag.length > 128) detail = `it has ${tag.length} characters`;
  else if (tag.startsWith('.') || tag.startsWith('-')) detail = `it starts with "${tag[0]}"`;
  else detail = `it contains ${quote(/[^A-Za-z0-9_.-]/.exec(tag)?.[0] ?? '')}`;
  return `tag ${quote(tag)} is invalid: ${TAG_RULE} (${detail})`;
}

function registryProblem(host: string): string | undefined {
  if (host === '') return 'empty registry host';
  let hostname: string | undefined;
  let port: string | undefined;
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    if (close === -1) return 'IPv6 address is missing its closing "]"';
    const address = host.slice(1, close);
    if (address.includes('%')) return 'IPv6 zone identifiers ("%…") are not supported in a registry host';
    if (!/^[0-9A-Fa-f:.]+$/.test(address) || !isIPv6(address)) return `${quote(address)} is not a valid IPv6 address`;
    const rest = host.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return `only ":<port>" may follow "]", found ${quote(rest)}`;
      port = rest.slice(1);
    }
  } else {
    const colon = host.indexOf(':');
    if (colon !== -1 && host.indexOf(':', colon + 1) !== -1) {
      return `an IPv6 address must be written in brackets, e.g. "[::1]:5000"`;
    }
    hostname = colon === -1 ? host : host.slice(0, colon);
    if (colon !== -1) port = host.slice(colon + 1);
  }

  if (hostname !== undefined) {
    const problem = hostnameProblem(hostname);
    if (problem !== undefined) return problem;
  }
  if (port !== undefined) {
    if (port === '') return 'missing port number after ":"';
    if (!/^[0-9]+$/.test(port)) return `port ${quote(port)} must be a number from 1 to 65535`;
    const n = Number(port);
    if (n < 1 || n > 65535) return `port ${port} is out of range 1-65535`;
  }
  return undefined;
}

function hostnameProblem(hostname: string): string | undefined {
  if (hostname === '') return 'missing host name before the port';
  // Four dot-separated numbers are an IPv4 address, not a DNS name, and must be a valid one.
  if (/^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/.test(hostname)) {
    return isIPv4(hostname)
      ? undefined
      : `${quote(hostname)} is not a valid IPv4 address (four numbers 0-255 without leading zeros)`;
  }
  if (hostname.length > 253) return `host name is ${hostname.length} characters long; at most 253 are allowed`;
  for (const label of hostname.split('.')) {
    if (label === '') return `host name ${quote(hostname)} has an empty label (a leading, trailing or doubled ".")`;
    if (label.length > 63) return `host name label ${quote(label)} is longer than 63 characters`;
    if (!DNS_LABEL.test(label)) {
      const bad = /[^A-Za-z0-9-]/.exec(label);
      return bad !== null
        ? `character ${quote(bad[0])} is not allowed in host name ${quote(hostname)}; use letters, digits, "-" and "."`
        : `host name label ${quote(label)} must not start or end with "-"`;
    }
  }
  return undefined;
}

const CHAR_NAMES: Readonly<Record<string, string>> = {
  ' ': 'a space',
  '\t': 'a tab',
  '\n': 'a newline',
  '\r': 'a carriage return',
};

/** Names a character unambiguously, even when it is invisible or looks like ASCII (e.g. U+2010 vs "-"). */
function describeChar(ch: string): string {
  const named = CHAR_NAMES[ch];
  if (named !== undefined) return named;
  const code = (ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
  const printable = /[\p{L}\p{N}\p{P}\p{S}]/u.test(ch);
  return printable ? `"${ch}" (U+${code})` : `U+${code}`;
}

/** Quotes user input for an error message: escapes control characters and caps very long input. */
function quote(s: string): string {
  return JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}…` : s);
}
