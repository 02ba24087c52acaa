/**
 * Finish an import once every blob is in place: push manifests by digest, children before the indexes that
 * list them and subjects before their referrers (then the referrers' fallback or cosign tags:
 * lib/engine/referrer-links.ts), then point every target tag at the root (which then goes in by its tags only,
 * unless something needs it by digest first: rootByTag). A tag that already points at the
 * digest is left alone (immutable-tag registries refuse even an identical rewrite); one that points elsewhere
 * moves only with `force`. Every step is idempotent: finalize may run twice.
 *
 * Requests that do not depend on each other go out together (a bounded number at once): the HEADs of all
 * manifests, the PUTs of one level of the manifest tree, the HEADs and the PUTs of the tags — on a far-away
 * registry the round trips, not the bytes, are the time of a small import.
 */
import { isIndexType, manifestFrom, parseManifest, type RawManifest } from '../oci/manifest.js';
import type { RegistryClient } from '../oci/registry.js';
import { DEFAULT_RETRY, oneAttempt, retry, throwIfAborted, type RetryPolicy } from '../retry.js';
import { isTemporary } from '../errors.js';
import { RegistryError } from '../oci/errors.js';
import type { Digest } from '../oci/digest.js';
import { forEachLimited } from '../concurrency.js';
import { ImportError } from './errors.js';
import { linkReferrers } from './referrer-links.js';
import { targetRepositories } from './targets.js';
import type { FinalizeResult, ImportPlan, PlannedManifest, TargetRef } from './types.js';

/** Requests in flight at once against the target. */
const PARALLEL = 8;

export interface FinalizeOptions {
  readonly signal?: AbortSignal;
  /**
   * Blobs were just copied or mounted into the target repositories: manifests that list them cannot be there
   * yet, so none is asked for first (the few that might, PUT again, are the same bytes: idempotent).
   */
  readonly fresh?: boolean;
  /**
   * What the target tags point at, asked already (headTags): by copyAllAndFinalize while the last blob's closing
   * request was on its way, where the tags' PUT is finalize's first write (tagCheckWithLastBlob). Without it, the
   * tags are asked here, after the manifests.
   */
  readonly tagHeads?: Promise<TagHeads>;
}

/** The digest each target tag points at now (`repository:tag`; undefined: absent). */
export type TagHeads = Map<string, string | undefined>;

export async function finalize(
  plan: ImportPlan,
  target: RegistryClient,
  o: FinalizeOptions = {},
): Promise<FinalizeResult> {
  const { signal } = o;
  const levels = manifestLevels(plan.manifests);
  for (const repository of targetRepositories(plan.target.refs)) {
    throwIfAborted(signal);
    const byTag = rootByTag(plan, repository);
    const present = new Set<string>();
    if (!o.fresh) {
      await forEachLimited(
        byTag ? plan.manifests.filter((m) => m.digest !== plan.root.digest) : plan.manifests,
        PARALLEL,
        async (m) => {
          if (await target.headManifest(repository, m.digest, { signal })) present.add(m.digest);
        },
      );
    }
    // manifests PUT now, and whether the registry took their `subject` into its referrers API
    const processed = new Map<Digest, boolean>();
    for (const level of levels) {
      await forEachLimited(
        level.filter((m) => !present.has(m.digest) && !(byTag && m.digest === plan.root.digest)),
        PARALLEL,
        async (m) => {
          const put = await putSettled(
            (retry) => target.putManifest(repository, m.digest, raw(m), { signal, retry }),
            signal,
          );
          processed.set(m.digest, put.subject !== undefined);
        },
      );
    }
    if (plan.referrers?.length) await linkReferrers(plan, target, repository, processed, signal);
  }
  const root = plan.manifests.find((m) => m.digest === plan.root.digest);
  if (!root)
    throw new ImportError('INVALID_REQUEST', `internal: root manifest ${plan.root.digest} is not in the plan`, {
      side: 'storage',
    });
  const { tagged, unchanged } = await tag(plan, target, raw(root), signal, o.tagHeads);
  return { digest: plan.root.digest, mediaType: plan.root.mediaType, tagged, unchanged };
}

/**
 * Whether the root goes into `repository` by its tags only: a manifest PUT under a tag stores the manifest as its
 * digest too, so a PUT by digest before it is one request (and one round trip) more. Only when every target of that
 * repository names a tag (a by-digest import has no tag to PUT) and no referrer is linked to the root before the tags
 * move (lib/engine/referrer-links.ts). A tag left alone already points at the root: the root is there.
 */
function rootByTag(plan: ImportPlan, repository: string): boolean {
  return !plan.referrers?.length && plan.target.refs.every((r) => r.repository !== repository || r.tag !== undefined);
}

/**
 * Whether the tags' check may go out with the request that closes the last blob instead of after finalize's other
 * writes: when the tags' PUT is finalize's first and only write (one manifest, the root, put by its tags into one
 * repository, no referrers). The check then precedes the PUT by the time that closing request takes (a round trip
 * and the registry's work on it), and the import saves that round trip: a few ms on loopback, about 20 ms of a small
 * image's 210 behind the far-away proxy. A check and a PUT are two requests either way (the registry API has no
 * conditional PUT): a tag written by another client between them is overwritten.
 */
export function tagCheckWithLastBlob(plan: ImportPlan): boolean {
  return (
    plan.manifests.length === 1 &&
    targetRepositories(plan.target.refs).length === 1 &&
    rootByTag(plan, plan.target.refs[0]!.repository)
  );
}

/** What each tag of `refs` points at on the target now, asked at most PARALLEL at once. */
export async function headTags(
  refs: readonly TargetRef[],
  target: RegistryClient,
  signal?: AbortSignal,
): Promise<TagHeads> {
  const heads: TagHeads = new Map();
  await forEachLimited(
    refs.filter((r) => r.tag),
    PARALLEL,
    async (ref) => {
      const head = await target.headManifest(ref.repository, ref.tag!, { signal });
      heads.set(`${ref.repository}:${ref.tag}`, head ? (head.digest ?? 'unknown digest') : undefined);
    },
  );
  return heads;
}

async function tag(
  plan: ImportPlan,
  target: RegistryClient,
  root: RawManifest,
  signal?: AbortSignal,
  asked?: Promise<TagHeads>,
): Promise<{ tagged: string[]; unchanged: string[] }> {
  const refs = plan.target.refs.filter((r) => r.tag);
  const heads = await (asked ?? headTags(refs, target, signal));
  const tagged: string[] = [];
  const unchanged: string[] = [];
  for (const ref of refs) {
    const name = `${ref.repository}:${ref.tag}`;
    const current = heads.get(name);
    if (current === plan.root.digest) unchanged.push(name);
    else if (current && !plan.force) {
      throw new ImportError(
        'TAG_EXISTS',
        `tag ${name} already exists on ${plan.target.registry} (${current}); use force to overwrite it`,
        { side: 'target' },
      );
    } else tagged.push(name);
  }
  await forEachLimited(
    refs.filter((r) => tagged.includes(`${r.repository}:${r.tag}`)),
    PARALLEL,
    async (ref) => {
      await putSettled((retry) => target.putManifest(ref.repository, ref.tag!, root, { signal, retry }), signal);
    },
  );
  return { tagged, unchanged };
}

/**
 * A manifest PUT, tried again when the registry says a blob or manifest it lists is unknown although this import saw
 * every one of them in place. The CNCF distribution registry on filesystem storage rewrites a repository's link to a
 * blob in place when the same blob is mounted or pushed there again, and a manifest PUT that reads the link meanwhile
 * is refused (`DIGEST_INVALID` and `MANIFEST_BLOB_UNKNOWN`): seen in CI with two tags of one image synced into one
 * repository at once. A moment later the link is whole again. One that is really missing is refused every time, and
 * the import fails with the registry's code after the attempts of DEFAULT_RETRY (about 3 s). This loop retries the
 * PUT for any temporary failure too: `put` sends it with the policy it is given, one attempt (lib/retry.ts).
 */
function putSettled<T>(put: (retry: RetryPolicy) => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  return retry(() => put(oneAttempt(DEFAULT_RETRY)), DEFAULT_RETRY, {
    signal,
    retryable: (err) => isTemporary(err) || linkRace(err),
  });
}

function linkRace(err: unknown): boolean {
  return (
    err instanceof RegistryError &&
    err.status === 400 &&
    err.diagnostics.some((d) => d.code === 'MANIFEST_BLOB_UNKNOWN' || d.code === 'MANIFEST_UNKNOWN')
  );
}

function raw(m: PlannedManifest): RawManifest {
  return manifestFrom(Buffer.from(m.bytes, 'base64'), m.mediaType);
}

/** The manifests `m` must follow: the children an index lists, the subject a referrer names. */
function dependencies(m: PlannedManifest): string[] {
  let parsed;
  try {
    parsed = parseManifest(raw(m));
  } catch {
    return []; // an artifact we only carry: nothing to order it by
  }
  return [
    ...(isIndexType(m.mediaType) ? parsed.manifests.map((d) => d.digest) : []),
    ...(parsed.subject ? [parsed.subject.digest] : []),
  ];
}

/**
 * The plan's manifests in levels: a manifest comes one level after every manifest of the plan it lists or
 * names as its subject, so a level's PUTs may go out together (registries check that an index's children
 * exist, and take a referrer into their referrers API when its subject is there).
 */
export function manifestLevels(manifests: readonly PlannedManifest[]): PlannedManifest[][] {
  const inPlan = new Map(manifests.map((m) => [m.digest as string, m]));
  const level = new Map<string, number>();
  const levelOf = (m: PlannedManifest, depth = 0): number => {
    const known = level.get(m.digest);
    if (known !== undefined) return known;
    if (depth > inPlan.size)
      throw new ImportError('UNSUPPORTED_MANIFEST', `manifest ${m.digest} is part of a cycle`, { side: 'source' });
    const children = dependencies(m)
      .map((d) => inPlan.get(d))
      .filter((c): c is PlannedManifest => c !== undefined);
    const l = children.length ? 1 + Math.max(...children.map((c) => levelOf(c, depth + 1))) : 0;
    level.set(m.digest, l);
    return l;
  };
  const levels: PlannedManifest[][] = [];
  for (const m of manifests) (levels[levelOf(m)] ??= []).push(m);
  return levels.filter(Boolean);
}
