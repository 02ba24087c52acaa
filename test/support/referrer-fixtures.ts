/**
 * Images and referrers in the in-process fake registry: a two-platform index, a referrer attached to a
 * manifest by `subject` (as cosign in OCI 1.1 mode or an SBOM tool writes one), and the fallback tag
 * `sha256-<hex>` listing referrers (what a client writes where the registry has no referrers API).
 */
import { createHash } from 'node:crypto';
import type { FakeRegistry } from './fake-registry.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const EMPTY = 'application/vnd.oci.empty.v1+json';
/** cosign's artifactType of a signature (sigstore/cosign `internal/pkg/oci/remote/remote.go`). */
export const SIG = 'application/vnd.dev.cosign.artifact.sig.v1+json';
export const SBOM = 'application/spdx+json';

export const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
export const hex = (d: string): string => d.slice(d.indexOf(':') + 1);

export interface Ref {
  digest: string;
  bytes: Buffer;
  mediaType: string;
}

export function image(reg: FakeRegistry, repo: string, arch: string, seed = ''): Ref {
  const layer = Buffer.from(`layer of ${arch}${seed}`);
  const config = Buffer.from(
    JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, seed }),
  );
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: reg.putBlob(repo, config),
        size: config.length,
      },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: reg.putBlob(repo, layer), size: layer.length },
      ],
    }),
  );
  return { digest: reg.putManifest(repo, sha(bytes), bytes, OCI_MANIFEST), bytes, mediaType: OCI_MANIFEST };
}

/** An index of linux/amd64 and linux/arm64 under `repo:tag`. */
export function seedIndex(reg: FakeRegistry, repo = 'team/app', tag = '1', seed = '') {
  const children = ['amd64', 'arm64'].map((arch) => ({ arch, ...image(reg, repo, arch, seed) }));
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: children.map((c) => ({
        mediaType: OCI_MANIFEST,
        digest: c.digest,
        size: c.bytes.length,
        platform: { os: 'linux', architecture: c.arch },
      })),
    }),
  );
  const index: Ref = { digest: reg.putManifest(repo, tag, bytes, OCI_INDEX), bytes, mediaType: OCI_INDEX };
  return { index, amd64: children[0]!, arm64: children[1]! };
}

/** A referrer of `subject`: an empty config (or one of `configType`, whose media type is then its artifactType), one layer. */
export function attach(
  reg: FakeRegistry,
  repo: string,
  subject: Ref,
  o: { artifactType?: string; configType?: string; payload: string; annotations?: Record<string, string> },
): Ref {
  const config = Buffer.from('{}');
  const payload = Buffer.from(o.payload);
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      ...(o.artifactType ? { artifactType: o.artifactType } : {}),
      config: { mediaType: o.configType ?? EMPTY, digest: reg.putBlob(repo, config), size: config.length },
      layers: [{ mediaType: 'application/octet-stream', digest: reg.putBlob(repo, payload), size: payload.length }],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.bytes.length },
      annotations: o.annotations ?? { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' },
    }),
  );
  return { digest: reg.putManifest(repo, sha(bytes), bytes, OCI_MANIFEST), bytes, mediaType: OCI_MANIFEST };
}

/** The fallback tag `sha256-<hex>` of `subject` listing `referrers`. */
export function fallbackTag(
  reg: FakeRegistry,
  repo: string,
  subject: string,
  referrers: { digest: string; size: number; artifactType?: string }[],
): Ref {
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: referrers.map((r) => ({ mediaType: OCI_MANIFEST, ...r })),
    }),
  );
  return { digest: reg.putManifest(repo, `sha256-${hex(subject)}`, bytes, OCI_INDEX), bytes, mediaType: OCI_INDEX };
}

/** A referrer as a fallback index lists it. */
export const listed = (r: Ref, artifactType?: string) => ({
  digest: r.digest,
  size: r.bytes.length,
  ...(artifactType ? { artifactType } : {}),
});

/** The digests the fallback tag of `subject` lists in `repo` ([] when there is none). */
export function fallbackEntries(
  reg: FakeRegistry,
  repo: string,
  subject: string,
): { digest: string; artifactType?: string }[] {
  const m = reg.getManifest(repo, `sha256-${hex(subject)}`);
  return m
    ? (JSON.parse(Buffer.from(m.bytes).toString()) as { manifests: { digest: string; artifactType?: string }[] })
        .manifests
    : [];
}

// ---- the same on a real registry, over HTTP (no auth), as a client without the referrers API writes them ----

async function pushBlob(host: string, repo: string, data: Buffer): Promise<string> {
  const digest = sha(data);
  const start = await fetch(`http://${host}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`POST upload ${repo}: ${start.status}`);
  const location = new URL(start.headers.get('location')!, `http://${host}`);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream' },
    body: data,
  });
  if (put.status !== 201) throw new Error(`PUT blob ${digest}: ${put.status} ${await put.text()}`);
  return digest;
}

export async function pushManifest(
  host: string,
  repo: string,
  ref: string,
  bytes: Buffer,
  mediaType: string,
): Promise<string> {
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${ref}`, {
    method: 'PUT',
    headers: { 'content-type': mediaType },
    body: bytes,
  });
  if (res.status !== 201) throw new Error(`PUT manifest ${repo}:${ref}: ${res.status} ${await res.text()}`);
  return sha(bytes);
}

/** A cosign-style signature of `subject` (OCI 1.1 mode: config of cosign's artifactType, a simplesigning layer), pushed by digest. */
export async function pushSignature(
  host: string,
  repo: string,
  subject: Ref,
  payload: string,
): Promise<Ref & { blobs: string[] }> {
  const config = Buffer.from('{}');
  const layer = Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': repo },
        image: { 'docker-manifest-digest': subject.digest },
        type: 'cosign container image signature',
      },
      optional: { note: payload },
    }),
  );
  const blobs = [await pushBlob(host, repo, config), await pushBlob(host, repo, layer)];
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: SIG, digest: blobs[0], size: config.length },
      layers: [
        {
          mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
          digest: blobs[1],
          size: layer.length,
          annotations: { 'dev.cosignproject.cosign/signature': Buffer.from(payload).toString('base64') },
        },
      ],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.bytes.length },
    }),
  );
  return {
    digest: await pushManifest(host, repo, sha(bytes), bytes, OCI_MANIFEST),
    bytes,
    mediaType: OCI_MANIFEST,
    blobs,
  };
}

/** Writes the fallback tag of `subject` listing `referrers`. */
export async function pushFallbackTag(host: string, repo: string, subject: string, referrers: Ref[]): Promise<Ref> {
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: referrers.map((r) => ({
        mediaType: r.mediaType,
        digest: r.digest,
        size: r.bytes.length,
        artifactType: SIG,
      })),
    }),
  );
  return {
    digest: await pushManifest(host, repo, `sha256-${hex(subject)}`, bytes, OCI_INDEX),
    bytes,
    mediaType: OCI_INDEX,
  };
}
