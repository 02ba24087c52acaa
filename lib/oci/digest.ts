/**
 * Content digests (`<algorithm>:<hex>`), the identifiers that make an OCI copy verifiable.
 *
 * Why a branded string instead of a class: digests travel through JSON checkpoints, URLs and
 * headers as plain strings; the brand only records, at compile time, that the string has been
 * validated by {@link parseDigest}, so downstream code (blob URLs, `?digest=` on the final PUT,
 * checkpoint keys) never needs to re-check it.
 *
 * Only the two algorithms registered by the OCI image spec (v1.1, `descriptor.md#registered-algorithms`)
 * are accepted. A registry may in theory serve other algorithms, but this tool must be able to
 * verify what it copies, and it can only verify what it can hash.
 *
 * References:
 *   - https://github.com/opencontainers/image-spec/blob/v1.1.0/descriptor.md#digests
 *   - go-containerregistry `pkg/v1/hash.go` (`NewHash` checks hex characters and length per algorithm)
 *
 * @module
 */

import { OciImportError } from '../errors.js';
import { createHash } from 'node:crypto';

/** A validated, canonical (lowercase) digest such as `sha256:e3b0c442…`. Create it with {@link parseDigest}. */
export type Digest = string & { readonly __digest: unique symbol };

/**
 * Thrown when a string is not an acceptable digest. `input` is the string as given; the message
 * names the problem, e.g. `invalid digest "sha256:abc": sha256 needs 64 hex characters, got 3`.
 */
export class InvalidDigestError extends OciImportError {
  override name = 'InvalidDigestError';

  constructor(
    readonly input: string,
    /** The problem alone, without the `invalid digest "…":` prefix, so callers can embed it in their own message. */
    readonly reason: string,
  ) {
    super('INVALID_DIGEST', `invalid digest ${quote(input)}: ${reason}`);
  }
}

/** Hex length per supported algorithm: the hash output size in bytes × 2. */
const HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha512: 128 };

const SUPPORTED = Object.keys(HEX_LENGTH).join(' or ');

/**
 * Returns why `s` is not a digest, or `undefined` when it is one. Kept separate from the throwing
 * API so {@link isDigest} does not pay for building an exception.
 */
function digestProblem(s: string): string | undefined {
  if (s === '') return `the digest is empty; expected "sha256:" followed by 64 hex characters`;
  const colon = s.indexOf(':');
  if (colon === -1) {
    // A bare hex string is the usual copy-paste slip (`docker images --digests` prints the prefix, some UIs don't).
    const guess = Object.entries(HEX_LENGTH).find(([, length]) => length === s.length)?.[0];
    return guess !== undefined && /^[0-9a-fA-F]+$/.test(s)
      ? `missing algorithm prefix; write "${guess}:" before the hex`
      : `missing ":" between algorithm and hex; expected "<algorithm>:<hex>" such as "sha256:<64 hex characters>"`;
  }
  const algorithm = s.slice(0, colon);
  const hex = s.slice(colon + 1);
  if (algorithm === '') return `missing algorithm before ":", expected ${SUPPORTED}`;
  const lowerAlgorithm = algorithm.toLowerCase();
  const expected = HEX_LENGTH[lowerAlgorithm];
  if (expected === undefined) {
    return `unsupported algorithm ${quote(algorithm)}; expected ${SUPPORTED}`;
  }
  // OCI requires lowercase everywhere; registries compare digests byte for byte, so an
  // uppercase digest would name a different (non-existent) blob rather than fail loudly.
  if (algorithm !== lowerAlgorithm) return `algorithm must be lowercase ("${lowerAlgorithm}")`;
  const bad = /[^0-9a-f]/.exec(hex);
  if (bad !== null) {
    if (/^[0-9a-fA-F]+$/.test(hex)) return `hex must be lowercase (${algorithm}:${hex.toLowerCase()})`;
    return `${quote(bad[0])} at position ${bad.index + 1} of the hex part is not a hex character (0-9, a-f)`;
  }
  if (hex.length !== expected) return `${algorithm} needs ${expected} hex characters, got ${hex.length}`;
  return undefined;
}

/**
 * Validates `s` as a digest (`sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>`).
 *
 * Strict on purpose: no trimming, no case folding. A digest that needs fixing is a sign the
 * caller took it from the wrong place, and guessing could make the tool verify against the
 * wrong content.
 *
 * @throws {InvalidDigestError} naming the problem (length, case, algorithm, missing colon, …).
 */
export function parseDigest(s: string): Digest {
  const problem = digestProblem(s);
  if (problem !== undefined) throw new InvalidDigestError(s, problem);
  return s as Digest;
}

/** Type guard form of {@link parseDigest}: true iff `s` would parse. Never throws. */
export function isDigest(s: string): s is Digest {
  return digestProblem(s) === undefined;
}

/** The sha256 digest of `data`: what registries compute for blobs and manifests by default. */
export function sha256Digest(data: Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
}

/** The hex part of a digest (after the `:`), e.g. for the referrers fallback tag `sha256-<hex>`. */
export function digestHex(d: Digest): string {
  return d.slice(d.indexOf(':') + 1);
}

/** The algorithm part of a digest (before the `:`): `sha256` or `sha512`. */
export function digestAlgorithm(d: Digest): string {
  return d.slice(0, d.indexOf(':'));
}

/** Quotes user input for an error message: escapes control characters and caps very long input. */
function quote(s: string): string {
  return JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}…` : s);
}
