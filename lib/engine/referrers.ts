/**
 * Finding the referrers of an import on the source, while planning (issue 15). For every manifest the
 * import copies — and, in turn, every referrer found (a signature on an SBOM) — the source is asked:
 *
 * 1. its referrers API, `GET /v2/<name>/referrers/<digest>` (filtered by `artifactType` when one type is
 *    asked for and the server applies it, always filtered here too), every page on its own origin;
 * 2. where that answers 404, the fallback tag `<alg>-<hex>` (an index listing the referrers), as the spec
 *    requires ("Unavailable Referrers API"), by HEAD and then GET when it exists; a tag that holds no valid
 *    referrers index means none;
 * 3. cosign's older tags `sha256-<hex>.sig|att|sbom`, by HEAD (they cost Docker Hub no pull).
 *
 * A listed manifest whose `subject` is not the digest it was listed under is not copied (a stale or
 * forged fallback index must not bring in unrelated content). Every referrer counts against the same
 * limits as the image (MAX_MANIFESTS, MAX_BLOBS, MAX_IMPORT_BYTES, the plan's manifest bytes), and every
 * read of discovery — list pages, fallback tags, cosign HEADs and the listed manifests themselves — against
 * one quota of REFERRER_READS_PER_MANIFEST × (MAX_MANIFESTS + 1), whatever the lists claim: a digest listed
 * twice is fetched once, and one already seen to refer to another subject is dropped without a fetch. Compare oras-go `registry/remote/repository.go` (`Referrers`,
 * `referrersByTagSchema`) and regclient `scheme/reg/referrer.go`; nothing copied.
 */
import type { Digest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { MediaType, parseManifest, type Descriptor, type RawManifest } from '../oci/manifest.js';
import {
  COSIGN_TAGS,
  MEDIA_TYPE,
  cosignTag,
  referrerDescriptor,
  referrersIndexEntries,
  referrersTag,
  typeMatches,
  type CosignSuffix,
} from '../oci/referrers.js';
import type { ReferrersQuota, RegistryClient } from '../oci/registry.js';
import { ProtocolError } from '../oci/errors.js';
import type { PlannedReferrer, PlannedReferrersIndex } from './types.js';

/** Reads of referrers lists and tags one plan may make per manifest it may hold (MAX_MANIFESTS + 1). */
export const REFERRER_READS_PER_MANIFEST = 10;
/** Bytes of referrers lists one plan may read. */
export const MAX_REFERRER_LIST_BYTES = 16 * 1024 * 1024;

/** The plan being built, as discovery adds to it (implemented by the planner). */
export interface ReferrerCollector {
  /** The plan holds this manifest already. */
  has(digest: Digest): boolean;
  /** Adds a referrer's manifest (an index with its children) and blobs, counted against the limits. */
  addReferrer(raw: RawManifest): Promise<void>;
  /** Counts manifest bytes the plan keeps besides its manifests (a fallback index copied as it is). */
  keepBytes(n: number): void;
  readonly notes: { push(note: string): void };
}

export interface DiscoverOptions {
  readonly source: RegistryClient;
  readonly repository: string;
  /** Only these artifact types (none: all). */
  readonly types?: readonly string[];
  readonly maxManifests: number;
  readonly signal?: AbortSignal;
}

export interface Discovered {
  readonly referrers: readonly PlannedReferrer[];
  readonly indexes: readonly PlannedReferrersIndex[];
}

/** Subjects asked about at once. */
const PROBE_CONCURRENCY = 8;

const COPYABLE = new Set<string>([
  MediaType.OciManifest,
  MediaType.OciIndex,
  MediaType.DockerManifest,
  MediaType.DockerManifestList,
]);

interface Listing {
  readonly via: 'api' | 'tag';
  readonly descriptors: readonly Descriptor[];
  /** The fallback tag's index, when that is where the list came from. */
  readonly index?: RawManifest;
}

/** Finds the referrers of `subjects` (and of what it finds) and adds them to the plan. */
export async function discoverReferrers(
  subjects: readonly Digest[],
  plan: ReferrerCollector,
  o: DiscoverOptions,
): Promise<Discovered> {
  return new Discovery(plan, o).run(subjects);
}

class Discovery {
  private readonly referrers: PlannedReferrer[] = [];
  private readonly indexes: PlannedReferrersIndex[] = [];
  private readonly quota: ReferrersQuota;
  /** Whether the source has the referrers API: learned from the first answer (as oras-go caches it per repository). */
  private api: boolean | undefined;
  /** The subject of every listed manifest fetched so far (undefined: none): each digest is fetched once. */
  private readonly subjects = new Map<Digest, Digest | undefined>();

  constructor(
    private readonly plan: ReferrerCollector,
    private readonly o: DiscoverOptions,
  ) {
    this.quota = { pages: REFERRER_READS_PER_MANIFEST * (o.maxManifests + 1), bytes: MAX_REFERRER_LIST_BYTES };
  }

  /**
   * Breadth first: the subjects of one level are asked at once (at most PROBE_CONCURRENCY; the first alone
   * while it is unknown whether the source has the API), their findings added in order, then the next level.
   */
  async run(subjects: readonly Digest[]): Promise<Discovered> {
    const explored = new Set<Digest>();
    let level = [...subjects];
    while (level.length) {
      const fresh = [...new Set(level)].filter((d) => !explored.has(d));
      fresh.forEach((d) => explored.add(d));
      const probes =
        this.api === undefined && fresh.length
          ? [
              await this.probe(fresh[0]!),
              ...(await mapLimited(fresh.slice(1), PROBE_CONCURRENCY, (d) => this.probe(d))),
            ]
          : await mapLimited(fresh, PROBE_CONCURRENCY, (d) => this.probe(d));
      level = [];
      for (const [i, subject] of fresh.entries()) {
        level.push(
          ...(await this.listed(subject, probes[i]!.listing)),
          ...(await this.cosign(subject, probes[i]!.tags)),
        );
      }
    }
    return { referrers: this.referrers, indexes: this.indexes };
  }

  /** The list of `subject` and its cosign tags, asked at once. */
  private async probe(
    subject: Digest,
  ): Promise<{ listing: Listing; tags: Awaited<ReturnType<Discovery['cosignTags']>> }> {
    const [listing, tags] = await Promise.all([this.list(subject), this.cosignTags(subject)]);
    return { listing, tags };
  }

  /** The referrers listed for `subject` (API or fallback tag), added to the plan; returns the new ones. */
  private async listed(subject: Digest, listing: Listing): Promise<Digest[]> {
    const added: Digest[] = [];
    let complete = true;
    for (const d of listing.descriptors) {
      if (!typeMatches(d.artifactType, this.o.types)) {
        complete = false;
        continue;
      }
      if (this.plan.has(d.digest)) continue;
      const raw = await this.fetch(d, subject, listing.via);
      if (!raw) {
        complete = false;
        continue;
      }
      await this.plan.addReferrer(raw);
      this.referrers.push({ ...planned(raw), subject, via: listing.via });
      added.push(raw.digest);
    }
    const copied = new Set(this.referrers.filter((r) => r.subject === subject && r.via === 'tag').map((r) => r.digest));
    if (listing.index && complete && listing.descriptors.every((d) => copied.has(d.digest))) {
      this.plan.keepBytes(listing.index.bytes.length);
      this.indexes.push({ subject, mediaType: listing.index.mediaType, bytes: listing.index.bytes.toString('base64') });
    }
    return added;
  }

  private async list(subject: Digest): Promise<Listing> {
    const { source, repository, types, signal } = this.o;
    if (this.api !== false) {
      const list = await source.listReferrers(repository, subject, {
        artifactType: types?.length === 1 ? types[0] : undefined,
        quota: this.quota,
        signal,
      });
      this.api = list !== undefined;
      if (list) return { via: 'api', descriptors: list.descriptors };
    }
    // HEAD first: most subjects have no fallback tag, and a HEAD costs no pull where GETs are counted (Docker Hub)
    const tag = referrersTag(subject);
    if (this.quota.pages-- <= 0) throw this.exhausted(subject);
    const head = await source.headManifest(repository, tag, { signal });
    const raw = head && (await this.read(() => source.getManifest(repository, head.digest ?? tag, { signal })));
    if (!raw) return { via: 'tag', descriptors: [] };
    this.quota.bytes -= raw.bytes.length;
    if (this.quota.bytes < 0) throw this.exhausted(subject);
    try {
      return {
        via: 'tag',
        descriptors: referrersIndexEntries(raw, subject, `fallback tag ${repository}:${tag} on the source`),
        index: raw,
      };
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      // spec: "if … the tag schema does not return a valid image index, the client SHOULD assume there are no referrers"
      this.plan.notes.push(`${err.message}; taken as no referrers`);
      return { via: 'tag', descriptors: [] };
    }
  }

  /** A listed referrer's manifest, or undefined (with a note) when it cannot or must not be copied. */
  private async fetch(d: Descriptor, subject: Digest, via: 'api' | 'tag'): Promise<RawManifest | undefined> {
    const where = via === 'api' ? 'the referrers API' : `fallback tag ${referrersTag(subject)}`;
    if (!COPYABLE.has(d.mediaType)) {
      this.plan.notes.push(
        `referrer ${d.digest} of ${subject} (listed by ${where}) is a ${d.mediaType}, not a manifest type oci-import copies; not copied`,
      );
      return undefined;
    }
    // listed before (twice in one list, or under another subject): what it refers to is known, no second GET
    if (this.subjects.has(d.digest) && this.subjects.get(d.digest) !== subject) return undefined;
    if (this.quota.pages-- <= 0) throw this.exhausted(subject);
    const raw = await this.o.source.getManifest(this.o.repository, d.digest, { signal: this.o.signal });
    const own = parseManifest(raw).subject?.digest;
    this.subjects.set(d.digest, own);
    if (own !== subject) {
      this.plan.notes.push(
        `manifest ${d.digest} is listed by ${where} as a referrer of ${subject}, but its subject is ${own ?? 'absent'}; not copied`,
      );
      return undefined;
    }
    return raw;
  }

  /** cosign's tags of `subject` (of the types wanted) that exist, by HEAD. */
  private async cosignTags(subject: Digest): Promise<{ suffix: CosignSuffix; tag: string; digest?: Digest }[]> {
    const wanted = (Object.keys(COSIGN_TAGS) as CosignSuffix[])
      .map((suffix) => ({ suffix, tag: cosignTag(subject, suffix) }))
      .filter(
        (t): t is { suffix: CosignSuffix; tag: string } =>
          t.tag !== undefined && typeMatches(COSIGN_TAGS[t.suffix], this.o.types),
      );
    this.quota.pages -= wanted.length;
    if (this.quota.pages < 0) throw this.exhausted(subject);
    const heads = await Promise.all(
      wanted.map(async (t) => ({
        ...t,
        head: await this.o.source.headManifest(this.o.repository, t.tag, { signal: this.o.signal }),
      })),
    );
    return heads.filter((t) => t.head).map((t) => ({ suffix: t.suffix, tag: t.tag, digest: t.head!.digest }));
  }

  /** The manifests under cosign's tags, added to the plan; returns the new ones. */
  private async cosign(
    subject: Digest,
    tags: readonly { suffix: CosignSuffix; tag: string; digest?: Digest }[],
  ): Promise<Digest[]> {
    const added: Digest[] = [];
    for (const { suffix, tag, digest } of tags) {
      if (this.quota.pages-- <= 0) throw this.exhausted(subject);
      const raw = await this.o.source.getManifest(this.o.repository, digest ?? tag, { signal: this.o.signal });
      if (!COPYABLE.has(raw.mediaType)) {
        this.plan.notes.push(
          `cosign tag ${tag} holds a ${raw.mediaType}, not a manifest type oci-import copies; not copied`,
        );
        continue;
      }
      if (!this.plan.has(raw.digest)) {
        await this.plan.addReferrer(raw);
        added.push(raw.digest);
      }
      this.referrers.push({ ...planned(raw), artifactType: COSIGN_TAGS[suffix], subject, via: 'cosign', tag });
    }
    return added;
  }

  /** A GET that may find nothing (404), counted against the quota. */
  private async read(fn: () => Promise<RawManifest>): Promise<RawManifest | undefined> {
    if (this.quota.pages-- <= 0) throw this.exhausted();
    try {
      return await fn();
    } catch (err) {
      if (err instanceof RegistryError && err.status === 404) return undefined;
      throw err;
    }
  }

  private exhausted(subject?: Digest): ProtocolError {
    return new ProtocolError(
      'TOO_MANY_REFERRERS',
      `${this.o.source.registry}/${this.o.repository}: finding the referrers${subject ? ` of ${subject}` : ''} took more than ${REFERRER_READS_PER_MANIFEST} reads per manifest (MAX_MANIFESTS + 1: lists, tags and the listed manifests) or ${MAX_REFERRER_LIST_BYTES} bytes of lists; narrow referrerTypes`,
      { side: 'source' },
    );
  }
}

function planned(
  raw: RawManifest,
): Pick<PlannedReferrer, 'digest' | 'mediaType' | 'size' | 'artifactType' | 'annotations'> {
  const d = referrerDescriptor(raw);
  return {
    digest: raw.digest,
    mediaType: raw.mediaType,
    size: raw.bytes.length,
    // shown in the job's status: only what is a media type (a source may write anything there)
    ...(d.artifactType && MEDIA_TYPE.test(d.artifactType) ? { artifactType: d.artifactType } : {}),
    ...(d.annotations ? { annotations: d.annotations } : {}),
  };
}

/** `fn` over `items`, at most `limit` at once, results in the order of `items`. */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
