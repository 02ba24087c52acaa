/**
 * The referrers re-check of a sync rule with `"referrers": true` (issue 15): a tag whose digest is the
 * same on both sides is imported again when the source has a referrer of it that the target lacks — a
 * signature added upstream after the image was mirrored. Cheap on the source, which may count requests:
 *
 * - a source with the referrers API: one GET per tag (the API answers whether there are any);
 * - a source without it: the rule's tag list (read anyway) says whether the fallback tag `sha256-<hex>`
 *   or a cosign tag exists. None: no request at all. The fallback tag: one HEAD, compared with the
 *   target's same tag (equal when the import copied the source's index as it was); only when they differ,
 *   one GET of the source's list, whose entries the target must list (its API or its fallback tag).
 *   A cosign tag: one HEAD on each side, compared by digest.
 *
 * Direct referrers of the tag's manifest only: referrers of an index's children or of other referrers
 * come with the next import of the tag (when it changes, or its direct referrers do).
 */
import { isDigest, type Digest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import {
  COSIGN_TAGS,
  cosignTag,
  referrersIndexEntries,
  referrersTag,
  typeMatches,
  type CosignSuffix,
} from '../oci/referrers.js';
import type { RegistryClient } from '../oci/registry.js';

export interface ReferrersCheckOptions {
  readonly source: RegistryClient;
  readonly sourceRepository: string;
  readonly target: RegistryClient;
  readonly targetRepository: string;
  /** Every tag of the source repository (the rule's listing). */
  readonly sourceTags: ReadonlySet<string>;
  readonly types?: readonly string[];
  readonly signal?: AbortSignal;
}

/** Pages of one referrers list a check reads at most. */
const CHECK_PAGES = 10;

export class ReferrersCheck {
  /** Whether the source repository has the referrers API: learned from the first tag checked. */
  private api: boolean | undefined;

  constructor(private readonly o: ReferrersCheckOptions) {}

  /** True when the source has a referrer of `digest` (of the rule's types) that the target does not list. */
  async changed(digest: string): Promise<boolean> {
    if (!isDigest(digest)) return false;
    if (await this.cosignChanged(digest)) return true;
    const wanted = await this.sourceReferrers(digest);
    if (!wanted?.length) return false;
    const listed = await this.listed(this.o.target, this.o.targetRepository, digest);
    return wanted.some((d) => !listed.has(d));
  }

  /** Digests the source lists for `digest`; undefined when the target's fallback tag is the source's, byte for byte. */
  private async sourceReferrers(digest: Digest): Promise<Digest[] | undefined> {
    const { source, sourceRepository: repository, types, signal } = this.o;
    if (this.api !== false) {
      const list = await source.listReferrers(repository, digest, {
        artifactType: types?.length === 1 ? types[0] : undefined,
        quota: { pages: CHECK_PAGES, bytes: MAX_MANIFEST_BYTES * CHECK_PAGES },
        signal,
      });
      this.api = list !== undefined;
      if (list) return list.descriptors.filter((d) => typeMatches(d.artifactType, types)).map((d) => d.digest);
    }
    const tag = referrersTag(digest);
    if (!this.o.sourceTags.has(tag)) return [];
    const [theirs, ours] = await Promise.all([
      source.headManifest(repository, tag, { signal }),
      this.o.target.headManifest(this.o.targetRepository, tag, { signal }),
    ]);
    if (!theirs || (theirs.digest && theirs.digest === ours?.digest)) return undefined;
    const raw = await getOrNothing(() => source.getManifest(repository, tag, { signal }));
    if (!raw) return [];
    try {
      return referrersIndexEntries(raw, digest, tag)
        .filter((d) => typeMatches(d.artifactType, types))
        .map((d) => d.digest);
    } catch {
      return []; // no valid referrers index: no referrers (as the import takes it)
    }
  }

  /** A cosign tag of `digest` on the source that the target lacks or holds with another digest. */
  private async cosignChanged(digest: Digest): Promise<boolean> {
    for (const suffix of Object.keys(COSIGN_TAGS) as CosignSuffix[]) {
      const tag = cosignTag(digest, suffix);
      if (!tag || !this.o.sourceTags.has(tag) || !typeMatches(COSIGN_TAGS[suffix], this.o.types)) continue;
      const [theirs, ours] = await Promise.all([
        this.o.source.headManifest(this.o.sourceRepository, tag, { signal: this.o.signal }),
        this.o.target.headManifest(this.o.targetRepository, tag, { signal: this.o.signal }),
      ]);
      if (theirs && theirs.digest !== ours?.digest) return true;
    }
    return false;
  }

  /** What a registry lists as referrers of `digest`: its API, else its fallback tag. */
  private async listed(client: RegistryClient, repository: string, digest: Digest): Promise<Set<string>> {
    const { signal } = this.o;
    const list = await client.listReferrers(repository, digest, {
      quota: { pages: CHECK_PAGES, bytes: MAX_MANIFEST_BYTES * CHECK_PAGES },
      signal,
    });
    if (list) return new Set(list.descriptors.map((d) => d.digest));
    const raw = await getOrNothing(() => client.getManifest(repository, referrersTag(digest), { signal }));
    try {
      return new Set(raw ? referrersIndexEntries(raw, digest, referrersTag(digest)).map((d) => d.digest) : []);
    } catch {
      return new Set();
    }
  }
}

async function getOrNothing<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RegistryError && err.status === 404) return undefined;
    throw err;
  }
}
