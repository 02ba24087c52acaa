/**
 * Referrers as the distribution spec defines them (v1.1.1 and main, "Listing Referrers", "Pushing
 * Manifests with Subject", "Referrers Tag Schema"), and cosign's older tag convention: names, the
 * descriptor a referrers list holds for a manifest, and the checks a listed index must pass. Pure: no
 * requests here (the client's `listReferrers` does those).
 */
import type { Digest } from './digest.js';
import { ProtocolError } from './errors.js';
import { MediaType, parseManifest, type Descriptor, type RawManifest } from './manifest.js';

/** A media type (RFC 6838 `type/subtype`, restricted-name characters): what an artifactType filter names. */
export const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

/**
 * The tag of a subject's referrers index where a registry has no referrers API: the algorithm cut to 32
 * characters, `-`, the encoded part cut to 64, characters a tag may not hold replaced by `-` (spec main;
 * v1.1.1 says `<alg>-<ref>` with the ref cut to 64 — the same for sha256 and sha512).
 */
export function referrersTag(d: Digest): string {
  const colon = d.indexOf(':');
  const clean = (s: string): string => s.replace(/[^A-Za-z0-9_.-]/g, '-');
  return `${clean(d.slice(0, colon).slice(0, 32))}-${clean(d.slice(colon + 1).slice(0, 64))}`;
}

/** cosign's suffixes (sigstore/cosign `pkg/oci/remote/options.go`) and the artifactType it gives the same kind in OCI 1.1 mode
 * (`internal/pkg/oci/remote/remote.go` `ArtifactType`: `application/vnd.dev.cosign.artifact.<name>.v1+json`). */
export const COSIGN_TAGS = {
  sig: 'application/vnd.dev.cosign.artifact.sig.v1+json',
  att: 'application/vnd.dev.cosign.artifact.att.v1+json',
  sbom: 'application/vnd.dev.cosign.artifact.sbom.v1+json',
} as const;

export type CosignSuffix = keyof typeof COSIGN_TAGS;

/** `sha256-<hex>.sig` (cosign's `normalize`: the whole digest, `:` → `-`); undefined when that is no valid tag (sha512: too long). */
export function cosignTag(d: Digest, suffix: CosignSuffix): string | undefined {
  const tag = `${d.replace(':', '-')}.${suffix}`;
  return tag.length <= 128 ? tag : undefined;
}

const REFERRERS_TAG = /^(?:sha256-[0-9a-f]{64}|sha512-[0-9a-f]{64,128})(?:\.(?:sig|att|sbom))?$/;

/** A tag that names referrers of a digest (a fallback tag or a cosign tag), not an image of its own. */
export function isReferrersTag(tag: string): boolean {
  return REFERRERS_TAG.test(tag);
}

/**
 * The descriptor of a manifest in a referrers list (spec "Pushing Manifests with Subject"): its
 * `artifactType`, else for an image manifest its config's media type (an index without one has none),
 * and all its annotations.
 */
export function referrerDescriptor(raw: RawManifest): Descriptor & { readonly artifactType?: string } {
  const json = JSON.parse(raw.bytes.toString('utf8')) as {
    artifactType?: unknown;
    config?: { mediaType?: unknown };
    annotations?: unknown;
  };
  const parsed = parseManifest(raw);
  const own = typeof json.artifactType === 'string' && json.artifactType ? json.artifactType : undefined;
  const config =
    parsed.kind === 'image' && typeof json.config?.mediaType === 'string' ? json.config.mediaType : undefined;
  const artifactType = own ?? config;
  const annotations = stringRecord(json.annotations);
  return {
    mediaType: raw.mediaType,
    digest: raw.digest,
    size: raw.bytes.length,
    ...(artifactType ? { artifactType } : {}),
    ...(annotations ? { annotations } : {}),
  };
}

function stringRecord(v: unknown): Record<string, string> | undefined {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const entries = Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string');
  return entries.length ? Object.fromEntries(entries) : undefined;
}

/** Whether a listed referrer is of one of `types` (all pass when there are none). */
export function typeMatches(artifactType: string | undefined, types: readonly string[] | undefined): boolean {
  return !types?.length || (artifactType !== undefined && types.includes(artifactType));
}

/**
 * The descriptors of a referrers index — a referrers API page or a fallback tag's manifest. It must be
 * an OCI index without a `subject` of its own (regclient `scheme/reg/referrer.go` refuses one, as it would
 * be a referrer itself) that is not the subject (oras-project/oras #2148: a registry answering the
 * fallback tag with the subject's own manifest). Throws a ProtocolError naming what it is instead.
 */
export function referrersIndexEntries(raw: RawManifest, subject: Digest, what: string): readonly Descriptor[] {
  if (raw.mediaType !== MediaType.OciIndex) {
    throw new ProtocolError(
      'INVALID_ANSWER',
      `${what} is a ${raw.mediaType} manifest, not the OCI index of a referrers list`,
    );
  }
  if (raw.digest === subject)
    throw new ProtocolError('INVALID_ANSWER', `${what} is the subject ${subject} itself, not a referrers list`);
  let parsed;
  try {
    parsed = parseManifest(raw);
  } catch (err) {
    throw new ProtocolError('INVALID_ANSWER', `${what} is not a valid referrers list: ${(err as Error).message}`);
  }
  if (parsed.subject)
    throw new ProtocolError('INVALID_ANSWER', `${what} has a subject of its own; a referrers list has none`);
  return parsed.manifests;
}

/**
 * A referrers index (`schemaVersion` 2, OCI index) that keeps `existing` (its fields and entries as they
 * are) and appends `added` — the fallback tag update of spec "Pushing Manifests with Subject".
 */
export function mergedReferrersIndex(existing: RawManifest | undefined, added: readonly Descriptor[]): Buffer {
  const base = existing ? (JSON.parse(existing.bytes.toString('utf8')) as Record<string, unknown>) : {};
  const manifests = Array.isArray(base.manifests) ? (base.manifests as unknown[]) : [];
  return Buffer.from(
    JSON.stringify({ ...base, schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [...manifests, ...added] }),
  );
}
