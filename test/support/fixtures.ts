/**
 * Deterministic fixtures written as OCI image layouts (oci-layout, index.json, blobs/sha256/<hex>) by
 * hand with node:crypto / node:zlib — no external tools. Same options (and seed) → same bytes → same
 * digests, so tests can name fixtures by digest.
 */
import { createCipheriv, createHash, randomUUID } from 'node:crypto';
import { mkdir, open, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';

export const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  helmConfig: 'application/vnd.cncf.helm.config.v1+json',
  helmChart: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip',
} as const;

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform & { 'os.version'?: string };
  annotations?: Record<string, string>;
}

export interface BuiltImage {
  /** Absolute path of the OCI image layout. */
  layoutDir: string;
  /** Digest of the top-level manifest/index (the one index.json points to). */
  digest: string;
  /** Media type of the top-level manifest/index. */
  mediaType: string;
  /** Exact bytes of the top-level manifest/index. */
  manifestBytes: Buffer;
  /** Every non-manifest blob (configs and layers), de-duplicated, in first-use order. */
  blobs: { digest: string; size: number }[];
  /** Child manifests of an index/list in index order (empty for a single manifest). */
  manifests: Descriptor[];
  /** Tag written as org.opencontainers.image.ref.name in index.json. */
  tag: string;
}

// ---------------------------------------------------------------------------------------------
// Primitives
// ---------------------------------------------------------------------------------------------

export function sha256(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

/** Pseudo-random bytes: sha256(seed ':' label ':' counter) concatenated. */
export function seededBytes(seed: string, label: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let off = 0;
  for (let i = 0; off < size; i++) {
    const block = createHash('sha256').update(`${seed}:${label}:${i}`).digest();
    off += block.copy(out, off, 0, Math.min(block.length, size - off));
  }
  return out;
}

function octal(n: number, width: number): string {
  // width includes the trailing NUL
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

/** The 512-byte ustar header of a regular file (mode 0644, uid/gid 0, mtime 0). */
function tarHeader(name: string, size: number): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar name too long: ${name}`);
  const h = Buffer.alloc(512, 0);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(0o644, 8), 100, 'ascii'); // mode
  h.write(octal(0, 8), 108, 'ascii'); // uid
  h.write(octal(0, 8), 116, 'ascii'); // gid
  h.write(octal(size, 12), 124, 'ascii'); // size
  h.write(octal(0, 12), 136, 'ascii'); // mtime
  h.fill(0x20, 148, 156); // checksum placeholder: 8 spaces
  h.write('0', 156, 'ascii'); // typeflag: regular file
  h.write('ustar\0', 257, 'ascii'); // magic
  h.write('00', 263, 'ascii'); // version
  h.write('root', 265, 'ascii'); // uname
  h.write('root', 297, 'ascii'); // gname
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

/** Zero padding after a file's content, to the next 512-byte boundary. */
const tarPadding = (size: number) => (512 - (size % 512)) % 512;

/** A minimal deterministic ustar archive of regular files (mode 0644, uid/gid 0, mtime 0). */
export function makeTar(files: { name: string; content: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    parts.push(tarHeader(f.name, f.content.length), f.content);
    const pad = tarPadding(f.content.length);
    if (pad) parts.push(Buffer.alloc(pad, 0));
  }
  parts.push(Buffer.alloc(1024, 0)); // end-of-archive
  return Buffer.concat(parts);
}

/**
 * Writes a one-file tar of `size` pseudo-random bytes straight into `blobDir` under its digest,
 * hashing as it goes: memory stays at one 1 MiB block whatever the size. The bytes are an AES-128-CTR
 * keystream keyed by sha256(`key`) (hundreds of MB/s; seededBytes would take minutes for 300 MB).
 */
async function writeStreamedTar(
  blobDir: string,
  name: string,
  key: string,
  size: number,
): Promise<{ digest: string; size: number }> {
  await mkdir(blobDir, { recursive: true });
  const partial = join(blobDir, `.partial-${randomUUID()}`);
  const hash = createHash('sha256');
  const file = await open(partial, 'w');
  let total = 0;
  const put = async (b: Buffer) => {
    hash.update(b);
    total += b.length;
    await file.write(b);
  };
  try {
    await put(tarHeader(name, size));
    const cipher = createCipheriv(
      'aes-128-ctr',
      createHash('sha256').update(key).digest().subarray(0, 16),
      Buffer.alloc(16, 0),
    );
    const zeros = Buffer.alloc(1024 * 1024, 0);
    for (let left = size; left > 0; left -= zeros.length)
      await put(cipher.update(left >= zeros.length ? zeros : zeros.subarray(0, left)));
    await put(Buffer.alloc(tarPadding(size) + 1024, 0)); // padding + end-of-archive
  } finally {
    await file.close();
  }
  const digest = 'sha256:' + hash.digest('hex');
  await rename(partial, join(blobDir, digest.slice('sha256:'.length)));
  return { digest, size: total };
}

/** Deterministic gzip (node:zlib writes mtime 0; fixed level). */
export function gzip(data: Buffer): Buffer {
  return gzipSync(data, { level: 6 });
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v), 'utf8');

/** Accumulates blobs for one layout and writes it out. */
class LayoutWriter {
  /** Blob bytes to write, or null for a blob already written into the layout (streamed layers). */
  private readonly files = new Map<string, Buffer | null>();
  private readonly order: { digest: string; size: number }[] = [];

  /** Adds a blob; `track` = list it in BuiltImage.blobs (configs/layers, not manifests). */
  add(data: Buffer, track: boolean): { digest: string; size: number } {
    return this.record(sha256(data), data.length, data, track);
  }

  /** Records a layer that `writeStreamedTar` already wrote into the layout's blob directory. */
  addWritten(blob: { digest: string; size: number }): { digest: string; size: number } {
    return this.record(blob.digest, blob.size, null, true);
  }

  private record(digest: string, size: number, data: Buffer | null, track: boolean): { digest: string; size: number } {
    if (!this.files.has(digest)) {
      this.files.set(digest, data);
      if (track) this.order.push({ digest, size });
    }
    return { digest, size };
  }

  get blobs() {
    return [...this.order];
  }

  async write(dir: string, root: { mediaType: string; digest: string; size: number }, tag: string): Promise<string> {
    const layoutDir = resolve(dir);
    const blobDir = join(layoutDir, 'blobs', 'sha256');
    await mkdir(blobDir, { recursive: true });
    await writeFile(join(layoutDir, 'oci-layout'), json({ imageLayoutVersion: '1.0.0' }));
    for (const [digest, data] of this.files)
      if (data) await writeFile(join(blobDir, digest.slice('sha256:'.length)), data);
    await writeFile(
      join(layoutDir, 'index.json'),
      json({
        schemaVersion: 2,
        mediaType: MT.ociIndex,
        manifests: [{ ...root, annotations: { 'org.opencontainers.image.ref.name': tag } }],
      }),
    );
    return layoutDir;
  }
}

function imageConfig(p: Platform, diffIds: string[], extra: Record<string, unknown> = {}): Buffer {
  const cfg: Record<string, unknown> = {
    created: '1970-01-01T00:00:00Z',
    architecture: p.architecture,
    os: p.os,
  };
  if (p.variant !== undefined) cfg.variant = p.variant;
  Object.assign(cfg, {
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'], ...extra },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map((_, i) => ({ created: '1970-01-01T00:00:00Z', created_by: `oci-import fixture layer ${i}` })),
  });
  return json(cfg);
}

function platformOf(p: Platform): Platform {
  const out: Platform = { architecture: p.architecture, os: p.os };
  if (p.variant !== undefined) out.variant = p.variant;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Public builders
// ---------------------------------------------------------------------------------------------

/**
 * An image (platforms omitted) or an OCI index / Docker manifest list (docker: true) over one
 * manifest per platform. Layer 0 is SHARED between all platforms (dedupe), the others are unique.
 * OCI layers are uncompressed tars (application/vnd.oci.image.layer.v1.tar, diff_id == digest);
 * Docker layers are gzipped tars (Docker v2s2 has no widely supported uncompressed layer type).
 */
export async function buildImage(opts: {
  dir: string;
  platforms?: Platform[];
  layersPerPlatform?: number;
  layerSize?: number;
  seed?: string;
  docker?: boolean;
  tag?: string;
  /**
   * Big layers (benchmarks): write every layer straight to disk while hashing it, with an AES-CTR
   * keystream instead of seededBytes (so other digests than without it), holding no layer in memory.
   * OCI (uncompressed) layers only.
   */
  streamLayers?: boolean;
}): Promise<BuiltImage> {
  const seed = opts.seed ?? 'oci-import';
  const layersPerPlatform = opts.layersPerPlatform ?? 2;
  const layerSize = opts.layerSize ?? 1024;
  const docker = opts.docker ?? false;
  const tag = opts.tag ?? 'latest';
  if (layersPerPlatform < 1) throw new Error('layersPerPlatform must be >= 1');
  if (opts.streamLayers && docker) throw new Error('streamLayers writes OCI (uncompressed) layers only');
  const w = new LayoutWriter();
  const streamed = new Map<string, Promise<{ digest: string; size: number }>>();

  const layer = async (label: string) => {
    const name = `${label.replace(/[^a-z0-9._-]/gi, '_')}.bin`;
    if (opts.streamLayers) {
      if (!streamed.has(label))
        streamed.set(
          label,
          writeStreamedTar(join(resolve(opts.dir), 'blobs', 'sha256'), name, `${seed}:${label}`, layerSize),
        );
      const blob = await streamed.get(label)!;
      return { desc: { mediaType: MT.ociLayerTar, ...w.addWritten(blob) }, diffId: blob.digest };
    }
    const tar = makeTar([{ name, content: seededBytes(seed, label, layerSize) }]);
    if (docker) {
      const gz = gzip(tar);
      return { desc: { mediaType: MT.dockerLayerGzip, ...w.add(gz, true) }, diffId: sha256(tar) };
    }
    return { desc: { mediaType: MT.ociLayerTar, ...w.add(tar, true) }, diffId: sha256(tar) };
  };

  const manifestFor = async (p: Platform) => {
    const key = `${p.os}-${p.architecture}${p.variant ? '-' + p.variant : ''}`;
    const layers = [await layer('shared-0')];
    for (let i = 1; i < layersPerPlatform; i++) layers.push(await layer(`${key}-${i}`));
    const cfgBytes = imageConfig(
      p,
      layers.map((l) => l.diffId),
    );
    const config = { mediaType: docker ? MT.dockerConfig : MT.ociConfig, ...w.add(cfgBytes, true) };
    const mediaType = docker ? MT.dockerManifest : MT.ociManifest;
    const bytes = json({ schemaVersion: 2, mediaType, config, layers: layers.map((l) => l.desc) });
    return { mediaType, bytes, ...w.add(bytes, false) };
  };

  if (!opts.platforms || opts.platforms.length === 0) {
    const m = await manifestFor({ os: 'linux', architecture: 'amd64' });
    const layoutDir = await w.write(opts.dir, { mediaType: m.mediaType, digest: m.digest, size: m.size }, tag);
    return {
      layoutDir,
      digest: m.digest,
      mediaType: m.mediaType,
      manifestBytes: m.bytes,
      blobs: w.blobs,
      manifests: [],
      tag,
    };
  }

  const children: Descriptor[] = [];
  for (const p of opts.platforms) {
    const m = await manifestFor(p);
    children.push({ mediaType: m.mediaType, digest: m.digest, size: m.size, platform: platformOf(p) });
  }
  const mediaType = docker ? MT.dockerList : MT.ociIndex;
  const bytes = json({ schemaVersion: 2, mediaType, manifests: children });
  const root = { mediaType, ...w.add(bytes, false) };
  const layoutDir = await w.write(opts.dir, root, tag);
  return { layoutDir, digest: root.digest, mediaType, manifestBytes: bytes, blobs: w.blobs, manifests: children, tag };
}

/**
 * An OCI index with `count` tiny distinct manifests (platform linux/amd64 with variant `v<i>`,
 * a distinct config and a per-manifest annotation), all sharing one small layer.
 */
export async function buildIndexOfN(opts: {
  dir: string;
  count: number;
  seed?: string;
  tag?: string;
}): Promise<BuiltImage> {
  const seed = opts.seed ?? 'oci-import';
  const tag = opts.tag ?? 'latest';
  if (opts.count < 1) throw new Error('count must be >= 1');
  const w = new LayoutWriter();
  const tar = makeTar([{ name: 'shared.bin', content: seededBytes(seed, 'index-of-n-shared', 64) }]);
  const layer = { mediaType: MT.ociLayerTar, ...w.add(tar, true) };
  const diffId = sha256(tar);
  const children: Descriptor[] = [];
  for (let i = 0; i < opts.count; i++) {
    const p: Platform = { os: 'linux', architecture: 'amd64', variant: `v${i}` };
    const cfg = imageConfig(p, [diffId], {
      Labels: { 'oci-import.test/index': String(i), 'oci-import.test/seed': seed },
    });
    const config = { mediaType: MT.ociConfig, ...w.add(cfg, true) };
    const bytes = json({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config,
      layers: [layer],
      annotations: { 'oci-import.test/index': String(i) },
    });
    children.push({ mediaType: MT.ociManifest, ...w.add(bytes, false), platform: p });
  }
  const bytes = json({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: children });
  const root = { mediaType: MT.ociIndex, ...w.add(bytes, false) };
  const layoutDir = await w.write(opts.dir, root, tag);
  return {
    layoutDir,
    digest: root.digest,
    mediaType: MT.ociIndex,
    manifestBytes: bytes,
    blobs: w.blobs,
    manifests: children,
    tag,
  };
}

/**
 * A Helm chart as an OCI artifact: config application/vnd.cncf.helm.config.v1+json and one
 * application/vnd.cncf.helm.chart.content.v1.tar+gzip layer (real gzipped tar of <name>/Chart.yaml).
 * index.json's ref.name is the chart version (as `helm push` tags it).
 */
export async function buildHelmChart(opts: { dir: string; name?: string; version?: string }): Promise<BuiltImage> {
  const name = opts.name ?? 'demo-chart';
  const version = opts.version ?? '0.1.0';
  const w = new LayoutWriter();
  const chartYaml = `apiVersion: v2\nname: ${name}\nversion: ${version}\ndescription: oci-import test chart\ntype: application\n`;
  const tgz = gzip(makeTar([{ name: `${name}/Chart.yaml`, content: Buffer.from(chartYaml, 'utf8') }]));
  const layer = { mediaType: MT.helmChart, ...w.add(tgz, true) };
  const config = { mediaType: MT.helmConfig, ...w.add(json({ name, version, apiVersion: 'v2' }), true) };
  const bytes = json({ schemaVersion: 2, mediaType: MT.ociManifest, config, layers: [layer] });
  const root = { mediaType: MT.ociManifest, ...w.add(bytes, false) };
  const layoutDir = await w.write(opts.dir, root, version);
  return {
    layoutDir,
    digest: root.digest,
    mediaType: MT.ociManifest,
    manifestBytes: bytes,
    blobs: w.blobs,
    manifests: [],
    tag: version,
  };
}
