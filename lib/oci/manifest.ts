/**
 * The content model: media types, descriptors, and what a manifest refers to. Manifests are kept as
 * the exact bytes the source served; parsing only reads them, it never re-serialises what is pushed.
 */
import { ProtocolError } from './errors.js';
import { isDigest, sha256Digest, type Digest } from './digest.js';

export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** Everything we can copy, sent on every manifest GET/HEAD (distribution 404s OCI types not accepted). */
export const MANIFEST_ACCEPT = [
  MediaType.OciIndex,
  MediaType.DockerManifestList,
  MediaType.OciManifest,
  MediaType.DockerManifest,
].join(', ');

/** Registries accept manifests of at least 4 MiB (spec); distribution and ACR refuse larger ones. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
  readonly urls?: readonly string[];
  readonly platform?: Platform;
  readonly artifactType?: string;
  readonly annotations?: Record<string, string>;
}

/** A manifest as served: its exact bytes, media type and digest. */
export interface RawManifest {
  readonly bytes: Buffer;
  readonly mediaType: string;
  readonly digest: Digest;
}

export function isIndexType(mediaType: string): boolean {
  return mediaType === MediaType.OciIndex || mediaType === MediaType.DockerManifestList;
}

export function isSchema1(mediaType: string): boolean {
  return mediaType === MediaType.DockerSchema1 || mediaType === MediaType.DockerSchema1Signed;
}

/** Layers that may not be redistributed (Windows foreign layers): copied by reference only, as crane and skopeo do. */
export function isNonDistributable(d: Descriptor): boolean {
  return (d.urls?.length ?? 0) > 0 || d.mediaType.includes('.foreign.') || d.mediaType.includes('.nondistributable.');
}

export function platformString(p: Platform | undefined): string {
  if (!p) return 'unknown';
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** `linux/arm64/v8` → Platform; `os/arch` is required. */
export function parsePlatform(s: string): Platform {
  const [os, architecture, variant, extra] = s.split('/');
  if (!os || !architecture || extra !== undefined) {
    throw new ProtocolError('INVALID_PLATFORM', `platform "${s}" must be os/arch or os/arch/variant, e.g. linux/arm64`);
  }
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** Matches `linux/arm64` against a child's platform (a filter without variant accepts every variant). */
export function platformMatches(filter: Platform, p: Platform | undefined): boolean {
  if (!p) return false;
  return (
    filter.os === p.os && filter.architecture === p.architecture && (!filter.variant || filter.variant === p.variant)
  );
}

function descriptorFrom(value: unknown, where: string): Descriptor {
  const v = value as Partial<Descriptor> | null;
  if (
    !v ||
    typeof v !== 'object' ||
    typeof v.mediaType !== 'string' ||
    typeof v.digest !== 'string' ||
    !isDigest(v.digest) ||
    typeof v.size !== 'number' ||
    !Number.isSafeInteger(v.size) ||
    v.size < 0
  ) {
    throw new ProtocolError('UNSUPPORTED_MANIFEST', `${where}: a descriptor lacks a valid mediaType, digest or size`);
  }
  return v as Descriptor;
}

export interface ParsedManifest {
  /** `index` lists manifests; `image` covers images and artifacts (config + layers). */
  readonly kind: 'index' | 'image';
  readonly manifests: readonly Descriptor[];
  /** config first, then layers; empty for an index. */
  readonly blobs: readonly Descriptor[];
  readonly subject?: Descriptor;
}

/** Resolves the media type the way the spec asks: the manifest's own `mediaType`, else the Content-Type. */
export function parseManifest(raw: RawManifest): ParsedManifest {
  if (isSchema1(raw.mediaType)) {
    throw new ProtocolError(
      'UNSUPPORTED_MANIFEST',
      `${raw.digest} is a Docker schema 1 manifest; schema 1 is deprecated and cannot be imported (convert it to schema 2 or OCI first)`,
    );
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(raw.bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new ProtocolError('UNSUPPORTED_MANIFEST', `manifest ${raw.digest} is not valid JSON`);
  }
  const where = `manifest ${raw.digest} (${raw.mediaType})`;
  const subject = json.subject === undefined ? undefined : descriptorFrom(json.subject, where);
  if (isIndexType(raw.mediaType)) {
    const list = json.manifests;
    if (!Array.isArray(list))
      throw new ProtocolError('UNSUPPORTED_MANIFEST', `${where}: an index without a "manifests" list`);
    return { kind: 'index', manifests: list.map((d) => descriptorFrom(d, where)), blobs: [], subject };
  }
  if (raw.mediaType === MediaType.OciManifest || raw.mediaType === MediaType.DockerManifest) {
    const layers = json.layers;
    if (!Array.isArray(layers))
      throw new ProtocolError('UNSUPPORTED_MANIFEST', `${where}: an image manifest without "layers"`);
    const config = descriptorFrom(json.config, where);
    return { kind: 'image', manifests: [], blobs: [config, ...layers.map((d) => descriptorFrom(d, where))], subject };
  }
  throw new ProtocolError(
    'UNSUPPORTED_MANIFEST',
    `${where}: media type ${raw.mediaType} is not a manifest type we can copy`,
  );
}

/** The media type of served bytes: Content-Type without parameters, else the JSON's own `mediaType`. */
export function resolveMediaType(contentType: string | undefined, bytes: Buffer): string {
  const fromHeader = contentType?.split(';')[0]?.trim();
  let fromBody: string | undefined;
  try {
    const m = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType;
    if (typeof m === 'string') fromBody = m;
  } catch {
    // not JSON: the caller reports it when parsing
  }
  if (fromBody) return fromBody;
  if (fromHeader && fromHeader !== 'application/json' && fromHeader !== 'text/plain') return fromHeader;
  return MediaType.OciManifest;
}

export function manifestFrom(bytes: Buffer, mediaType: string): RawManifest {
  return { bytes, mediaType, digest: sha256Digest(bytes) };
}
