/**
 * Linking the copied referrers to their subjects on the target, in finalize: after every manifest is
 * pushed (referrers included, byte for byte) and before the image's tags move, so a tag never points at
 * an image whose signature a policy would look for and not find.
 *
 * - A referrer whose PUT answered `OCI-Subject` is in the target's referrers API: nothing more to do.
 * - Otherwise (distribution 2.8, GHCR, Docker Hub…) the spec makes the client maintain the fallback tag
 *   `<alg>-<hex>` of the subject: read it (absent: start empty), add the entries it lacks (kept: every
 *   entry already there; added: none twice), write it back ("Pushing Manifests with Subject"). Registries
 *   rarely honour `If-Match` on manifests (distribution 2.8 ignores it), so the tag is read again just
 *   before the write and once after it; a change by someone else makes the merge start over.
 * - cosign tags `sha256-<hex>.sig|att|sbom` are written like image tags: moved only with `force`.
 *
 * A referrer that existed on the target already (a finalize run again) was not PUT: whether the target
 * has the API is then asked once per repository (one GET of its referrers API).
 */
import type { Digest } from '../oci/digest.js';
import { ProtocolError, RegistryError } from '../oci/errors.js';
import { MAX_MANIFEST_BYTES, MediaType, manifestFrom, type Descriptor, type RawManifest } from '../oci/manifest.js';
import { mergedReferrersIndex, referrersIndexEntries, referrersTag } from '../oci/referrers.js';
import type { RegistryClient } from '../oci/registry.js';
import { throwIfAborted } from '../retry.js';
import { ImportError } from './errors.js';
import { targetRepositories } from './targets.js';
import type { ImportPlan, PlannedReferrer } from './types.js';

/** Times the merge of one fallback tag starts over when another client changed the tag meanwhile. */
export const MERGE_ATTEMPTS = 5;

/** Refuses up front what finalize would refuse: a cosign tag pointing elsewhere (without force), a fallback tag that is no index. */
export async function checkReferrerTags(plan: ImportPlan, target: RegistryClient, signal?: AbortSignal): Promise<void> {
  const referrers = plan.referrers ?? [];
  if (!referrers.length) return;
  const subjects = [...new Set(referrers.filter((r) => r.via !== 'cosign').map((r) => r.subject))];
  for (const repository of targetRepositories(plan.target.refs)) {
    for (const r of referrers) {
      if (!r.tag || plan.force) continue;
      const head = await target.headManifest(repository, r.tag, { signal });
      if (head && head.digest !== r.digest) throw tagExists(plan, repository, r.tag, head.digest);
    }
    for (const subject of subjects) {
      const head = await target.headManifest(repository, referrersTag(subject), { signal });
      if (head?.mediaType && head.mediaType !== MediaType.OciIndex) {
        throw invalidTag(
          `the fallback tag ${repository}:${referrersTag(subject)} on ${plan.target.registry} holds a ${head.mediaType} manifest, not an OCI index`,
        );
      }
    }
  }
}

/**
 * Links the referrers of `plan` in one target repository. `processed` has an entry for every manifest
 * this finalize PUT: true when the registry answered `OCI-Subject`.
 */
export async function linkReferrers(
  plan: ImportPlan,
  target: RegistryClient,
  repository: string,
  processed: ReadonlyMap<Digest, boolean>,
  signal?: AbortSignal,
): Promise<void> {
  const referrers = plan.referrers ?? [];
  let api: boolean | undefined;
  const pending = new Map<Digest, PlannedReferrer[]>();
  for (const r of referrers) {
    if (r.via === 'cosign') continue;
    const pushed = processed.get(r.digest);
    if (pushed === true) continue;
    if (pushed === undefined) {
      api ??=
        (await target.listReferrers(repository, r.subject, {
          quota: { pages: 1, bytes: MAX_MANIFEST_BYTES },
          firstPageOnly: true,
          signal,
        })) !== undefined;
      if (api) continue;
    }
    pending.set(r.subject, [...(pending.get(r.subject) ?? []), r]);
  }
  for (const [subject, entries] of pending) {
    const copy = plan.referrersIndexes?.find((i) => i.subject === subject);
    await mergeFallbackTag(
      plan,
      target,
      repository,
      subject,
      entries,
      copy && manifestFrom(Buffer.from(copy.bytes, 'base64'), copy.mediaType),
      signal,
    );
  }
  for (const r of referrers) {
    if (r.tag) await writeCosignTag(plan, target, repository, r, signal);
  }
}

/**
 * Adds `entries` to the fallback tag of `subject`. `copy`: the source's fallback index, which lists
 * exactly the referrers copied; written as it is where the target has no such tag yet (so the target's
 * tag has the source's digest, and a sync pass compares the two by HEAD).
 */
async function mergeFallbackTag(
  plan: ImportPlan,
  target: RegistryClient,
  repository: string,
  subject: Digest,
  entries: readonly PlannedReferrer[],
  copy: RawManifest | undefined,
  signal?: AbortSignal,
): Promise<void> {
  const tag = referrersTag(subject);
  for (let attempt = 1; attempt <= MERGE_ATTEMPTS; attempt++) {
    throwIfAborted(signal);
    const current = await readFallbackTag(plan, target, repository, tag, subject, signal);
    const listed = new Set(current?.entries.map((d) => d.digest));
    const missing = entries.filter((e) => !listed.has(e.digest));
    if (!missing.length) return;
    const copyLists =
      copy && new Set(referrersIndexEntries(copy, subject, 'the source fallback index').map((d) => d.digest));
    const next =
      !current && copy && missing.every((e) => copyLists!.has(e.digest))
        ? copy
        : manifestFrom(mergedReferrersIndex(current?.raw, missing.map(descriptorOf)), MediaType.OciIndex);
    // Read again just before writing: most registries ignore If-Match, so this is the guard that works everywhere.
    const before = await target.headManifest(repository, tag, { signal });
    if (before?.digest !== current?.raw.digest) continue;
    try {
      await target.putManifest(repository, tag, next, { signal, ifMatch: before?.etag });
    } catch (err) {
      if (err instanceof RegistryError && err.status === 412) continue;
      throw err;
    }
    // …and after: another client may have written between our read and our write.
    const after = await target.headManifest(repository, tag, { signal });
    if (after?.digest === next.digest) return;
  }
  throw new ImportError(
    'REFERRERS_TAG_CONFLICT',
    `the fallback tag ${repository}:${tag} on ${plan.target.registry} changed under every one of ${MERGE_ATTEMPTS} attempts to merge the copied referrers into it; another client keeps writing it`,
    { temporary: true, side: 'target' },
  );
}

async function readFallbackTag(
  plan: ImportPlan,
  target: RegistryClient,
  repository: string,
  tag: string,
  subject: Digest,
  signal?: AbortSignal,
): Promise<{ raw: RawManifest; entries: readonly Descriptor[] } | undefined> {
  let raw: RawManifest;
  try {
    raw = await target.getManifest(repository, tag, { signal });
  } catch (err) {
    if (err instanceof RegistryError && err.status === 404) return undefined;
    throw err;
  }
  try {
    return {
      raw,
      entries: referrersIndexEntries(raw, subject, `the fallback tag ${repository}:${tag} on ${plan.target.registry}`),
    };
  } catch (err) {
    if (err instanceof ProtocolError) throw invalidTag(err.message);
    throw err;
  }
}

async function writeCosignTag(
  plan: ImportPlan,
  target: RegistryClient,
  repository: string,
  r: PlannedReferrer,
  signal?: AbortSignal,
): Promise<void> {
  const head = await target.headManifest(repository, r.tag!, { signal });
  if (head?.digest === r.digest) return;
  if (head && !plan.force) throw tagExists(plan, repository, r.tag!, head.digest);
  const m = plan.manifests.find((x) => x.digest === r.digest);
  if (!m)
    throw new ImportError('INVALID_REQUEST', `internal: referrer ${r.digest} is not in the plan`, { side: 'storage' });
  await target.putManifest(repository, r.tag!, manifestFrom(Buffer.from(m.bytes, 'base64'), m.mediaType), { signal });
}

function descriptorOf(r: PlannedReferrer): Descriptor {
  return {
    mediaType: r.mediaType,
    digest: r.digest,
    size: r.size,
    ...(r.artifactType ? { artifactType: r.artifactType } : {}),
    ...(r.annotations ? { annotations: { ...r.annotations } } : {}),
  };
}

function tagExists(plan: ImportPlan, repository: string, tag: string, digest: string | undefined): ImportError {
  return new ImportError(
    'TAG_EXISTS',
    `cosign tag ${repository}:${tag} already exists on ${plan.target.registry} (${digest ?? 'unknown digest'}) with other signatures; use force to overwrite it`,
    { side: 'target' },
  );
}

function invalidTag(problem: string): ImportError {
  return new ImportError(
    'REFERRERS_TAG_INVALID',
    `${problem}; the referrers tag schema needs an OCI index listing the referrers there: remove or fix that tag`,
    { side: 'target' },
  );
}
