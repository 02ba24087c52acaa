/**
 * Plan an import once: resolve the source, walk its index, collect the unique blobs, and refuse what
 * cannot or may not be imported — too many manifests or blobs, too many bytes, schema 1, a tag that
 * exists without `force` — before a single byte is copied or a single blob step is enqueued. The limits
 * are checked as the walk goes, so a hostile index of huge manifests costs at most the first one that
 * breaks a limit.
 */
import type { Digest } from '../oci/digest.js';
import {
  isNonDistributable,
  manifestFrom,
  parseManifest,
  parsePlatform,
  platformMatches,
  platformString,
  type Descriptor,
  type Platform,
  type RawManifest,
} from '../oci/manifest.js';
import { RegistryError } from '../oci/errors.js';
import { normalizeRegistry, parseReference, type Reference } from '../oci/reference.js';
import type { RegistryClient } from '../oci/registry.js';
import { mapLimited } from '../concurrency.js';
import { ImportError, type ImportLimits } from './errors.js';
import { Notes } from './notes.js';
import { headTags } from './finalize.js';
import { checkReferrerTags } from './referrer-links.js';
import { discoverReferrers, type ReferrerCollector } from './referrers.js';
import { targetRefs } from './targets.js';
import type {
  ImportPlan,
  ImportRequest,
  PlannedBlob,
  PlannedManifest,
  PlannedReferrer,
  PlannedReferrersIndex,
} from './types.js';

/** Indexes nested deeper than this are refused (real images use one level; attestations two). */
const MAX_INDEX_DEPTH = 4;
/**
 * Manifest bytes one plan may hold. Real manifests are a few KB (a thousand layers is ~200 KB); without a
 * bound, MAX_MANIFESTS children of 4 MiB each would make a 200 MiB plan that the plan step holds in memory
 * and writes to storage.
 */
export const MAX_PLAN_MANIFEST_BYTES = 16 * 1024 * 1024;
/** Manifest GETs (and tag HEADs) in flight at once. */
const PARALLEL_GETS = 8;

export interface PlanOptions extends ImportLimits {
  readonly source: RegistryClient;
  readonly target: RegistryClient;
  readonly signal?: AbortSignal;
}

export async function plan(req: ImportRequest, o: PlanOptions): Promise<ImportPlan> {
  const src = parseReference(req.source);
  const reference = src.digest ?? src.tag ?? 'latest';
  const planner = new Planner(req, src, reference, o);
  const refs = targetRefs(req);
  // What the target tags point at now, asked while the source is read (the answers do not depend on each other).
  const tagHeads = req.force ? undefined : headTags(refs, o.target, o.signal);
  tagHeads?.catch(() => undefined); // observed below; a failed plan must not leave it unhandled
  const root = await planner.fetchRoot();
  const out = await planner.walk(root);
  if (req.includeReferrers) await planner.addReferrers(root);
  const heads = tagHeads ? await tagHeads : undefined;
  const plan: ImportPlan = {
    version: 1,
    source: { registry: src.registry, repository: src.repository, reference },
    target: { registry: normalizeRegistry(req.target), refs },
    root: { digest: out.digest, mediaType: out.mediaType },
    manifests: planner.manifests,
    blobs: [...planner.blobs.values()],
    force: req.force ?? false,
    ...(req.includeReferrers ? { referrers: planner.referrers, referrersIndexes: planner.referrersIndexes } : {}),
    notes: planner.notes.list(),
    ...(heads && refs.every((r) => r.tag) && [...heads.values()].every((d) => d === undefined)
      ? { newTags: true }
      : {}),
  };
  if (heads) refuseMovedTags(plan, heads);
  await checkReferrerTags(plan, o.target, o.signal);
  return plan;
}

function refuseMovedTags(plan: ImportPlan, heads: Map<string, string | undefined>): void {
  for (const [name, digest] of heads) {
    if (digest !== undefined && digest !== plan.root.digest) {
      throw new ImportError(
        'TAG_EXISTS',
        `tag ${name} already exists on ${plan.target.registry} (${digest}); use force to overwrite it`,
        { side: 'target' },
      );
    }
  }
}

/** The walk's state: what is collected so far, counted against the limits at every addition. */
class Planner implements ReferrerCollector {
  readonly manifests: PlannedManifest[] = [];
  readonly blobs = new Map<Digest, PlannedBlob>();
  readonly notes = new Notes();
  referrers: readonly PlannedReferrer[] = [];
  referrersIndexes: readonly PlannedReferrersIndex[] = [];
  private readonly filters: Platform[];
  /** The index a platform filter made (it exists nowhere else: nothing refers to it). */
  private filtered: Digest | undefined;
  private children = 0;
  private referrerCount = 0;
  private bytes = 0;
  private manifestBytes = 0;

  constructor(
    private readonly req: ImportRequest,
    private readonly src: Reference,
    private readonly reference: string,
    private readonly o: PlanOptions,
  ) {
    this.filters = (req.platforms ?? []).map(parsePlatform);
  }

  private get name(): string {
    return `${this.src.registry}/${this.src.repository}:${this.reference}`;
  }

  async fetchRoot(): Promise<RawManifest> {
    try {
      return await this.o.source.getManifest(this.src.repository, this.reference, { signal: this.o.signal });
    } catch (err) {
      if (err instanceof RegistryError && err.status === 404) {
        throw new ImportError('SOURCE_NOT_FOUND', `${this.name} was not found on the source registry`, {
          side: 'source',
          cause: err,
        });
      }
      throw err;
    }
  }

  /** Walks from the root; returns what the target tags will point at. */
  async walk(root: RawManifest): Promise<RawManifest> {
    if (parseManifest(root).kind !== 'index') {
      this.addImage(root);
      return root;
    }
    const selected = await this.walkIndex(root, 1, true);
    if (!this.filters.length) {
      this.pushManifest(root);
      return root;
    }
    if (selected.length === 0) {
      const available = parseManifest(root)
        .manifests.map((c) => platformString(c.platform))
        .join(', ');
      throw new ImportError(
        'NO_MATCHING_PLATFORM',
        `no manifest of ${this.req.source} matches ${this.filters.map(platformString).join(', ')}; it has: ${available}`,
        { side: 'request' },
      );
    }
    const out = selected.length === 1 ? this.planned(selected[0]!.digest) : filteredIndex(root, selected);
    if (selected.length > 1) this.filtered = out.digest;
    this.notes.push(
      selected.length === 1
        ? `only ${platformString(selected[0]!.platform)} was selected: the tags point at that platform's manifest ${out.digest}`
        : `a filtered index of ${selected.length} platforms was written; its digest ${out.digest} differs from the source's ${root.digest}`,
    );
    this.pushManifest(out);
    return out;
  }

  private async walkIndex(raw: RawManifest, depth: number, filter: boolean): Promise<readonly Descriptor[]> {
    if (depth > MAX_INDEX_DEPTH)
      throw new ImportError(
        'UNSUPPORTED_MANIFEST',
        `indexes nested deeper than ${MAX_INDEX_DEPTH} levels are not supported`,
        { side: 'source' },
      );
    const children = parseManifest(raw).manifests;
    const selected =
      filter && this.filters.length
        ? children.filter((c) => this.filters.some((f) => platformMatches(f, c.platform)))
        : children;
    this.count(selected.length);
    // A batch of children at once (on a far-away source the round trips are the time); the limits are
    // checked after each child, so a hostile index costs at most one batch past the first that breaks one.
    for (let i = 0; i < selected.length; i += PARALLEL_GETS) {
      const batch = selected.slice(i, i + PARALLEL_GETS);
      const raws = await mapLimited(batch, PARALLEL_GETS, (child) =>
        this.o.source.getManifest(this.src.repository, child.digest, { signal: this.o.signal }),
      );
      for (const [k, childRaw] of raws.entries()) {
        if (parseManifest(childRaw).kind === 'index') {
          await this.walkIndex(childRaw, depth + 1, false);
          this.pushManifest(childRaw);
        } else {
          this.addImage(childRaw, batch[k]!.platform);
        }
      }
    }
    return selected;
  }

  /** Counts manifests against MAX_MANIFESTS: an index's children, and every referrer. */
  private count(n: number): void {
    this.children += n;
    if (this.children <= this.o.maxManifests) return;
    throw new ImportError(
      'TOO_MANY_MANIFESTS',
      this.referrerCount
        ? `${this.name} with its referrers has more than ${this.o.maxManifests} manifests (MAX_MANIFESTS); narrow referrerTypes or raise the limit`
        : `${this.name} is an index of ${this.children} manifests; the maximum number of manifests for an imported image is ${this.o.maxManifests} (MAX_MANIFESTS)`,
      { side: 'source' },
    );
  }

  /**
   * The referrers of every manifest the import copies (not of an index a platform filter made, nor of the
   * source index it replaces: its signatures would not verify the other index), and theirs.
   */
  async addReferrers(root: RawManifest): Promise<void> {
    if (this.filters.length && !this.manifests.some((m) => m.digest === root.digest)) {
      this.notes.push(
        `referrers of the source index ${root.digest} are not copied: with a platform filter the target does not hold that index (referrers of the platforms imported are)`,
      );
    }
    const subjects = this.manifests.map((m) => m.digest).filter((d) => d !== this.filtered);
    const found = await discoverReferrers(subjects, this, {
      source: this.o.source,
      repository: this.src.repository,
      types: this.req.referrerTypes,
      maxManifests: this.o.maxManifests,
      signal: this.o.signal,
    });
    this.referrers = found.referrers;
    this.referrersIndexes = found.indexes;
  }

  has(digest: Digest): boolean {
    return this.manifests.some((m) => m.digest === digest);
  }

  async addReferrer(raw: RawManifest): Promise<void> {
    this.referrerCount++;
    this.count(1);
    if (parseManifest(raw).kind === 'index') {
      await this.walkIndex(raw, 1, false);
      this.pushManifest(raw);
    } else {
      this.addImage(raw);
    }
  }

  keepBytes(n: number): void {
    this.manifestBytes += n;
    this.checkManifestBytes();
  }

  private addImage(raw: RawManifest, platform?: Platform): void {
    for (const d of parseManifest(raw).blobs) this.addBlob(d);
    this.pushManifest(raw, platform);
  }

  private addBlob(d: Descriptor): void {
    if (isNonDistributable(d)) {
      this.notes.push(
        `layer ${d.digest} is non-distributable (foreign URLs); the manifest keeps referring to it and its bytes are not copied`,
      );
      return;
    }
    if (this.blobs.has(d.digest)) return;
    this.blobs.set(d.digest, { digest: d.digest, size: d.size, mediaType: d.mediaType });
    this.bytes += d.size;
    if (this.blobs.size > this.o.maxBlobs) {
      throw new ImportError(
        'TOO_MANY_BLOBS',
        `${this.name} has more than ${this.o.maxBlobs} unique blobs (MAX_BLOBS); import fewer platforms or raise the limit`,
        { side: 'source' },
      );
    }
    if (this.bytes > this.o.maxImportBytes) {
      throw new ImportError(
        'IMPORT_TOO_LARGE',
        `${this.name} holds more than ${this.o.maxImportBytes} bytes of blobs (MAX_IMPORT_BYTES)${d.size > this.o.maxImportBytes ? `; blob ${d.digest} alone is ${d.size}` : ''}`,
        { side: 'source' },
      );
    }
  }

  private pushManifest(raw: RawManifest, platform?: Platform): void {
    if (!this.manifests.some((m) => m.digest === raw.digest)) {
      this.manifestBytes += raw.bytes.length;
      this.checkManifestBytes();
      this.manifests.push({
        digest: raw.digest,
        mediaType: raw.mediaType,
        bytes: raw.bytes.toString('base64'),
        platform: platform && platformString(platform),
      });
    }
  }

  private checkManifestBytes(): void {
    if (this.manifestBytes > MAX_PLAN_MANIFEST_BYTES) {
      throw new ImportError(
        'IMPORT_TOO_LARGE',
        `${this.name} has more than ${MAX_PLAN_MANIFEST_BYTES} bytes of manifests${this.referrerCount ? ' with its referrers' : ''}; real images have a few KB each`,
        { side: 'source' },
      );
    }
  }

  private planned(digest: Digest): RawManifest {
    const m = this.manifests.find((x) => x.digest === digest);
    if (!m) throw new ImportError('INVALID_REQUEST', `internal: manifest ${digest} missing from plan`);
    return manifestFrom(Buffer.from(m.bytes, 'base64'), m.mediaType);
  }
}

/** An index of the selected children only, in the source index's own media type and fields. */
function filteredIndex(root: RawManifest, selected: readonly Descriptor[]): RawManifest {
  const json = JSON.parse(root.bytes.toString('utf8')) as Record<string, unknown>;
  json.manifests = selected;
  return manifestFrom(Buffer.from(JSON.stringify(json, null, 2)), root.mediaType);
}
