/**
 * One sync pass: for every rule, list the source tags (paginated), select them, and compare source and
 * target by manifest HEAD only — Docker Hub counts manifest GETs against its pull limit, not HEADs — so
 * a pass over unchanged tags costs no GET and no blob byte. What differs becomes an import of the exact
 * digest seen (`repository:tag@digest`), moving the target tag (that is what a mirror is for).
 */
import type { ImportRequest } from '../engine/types.js';
import { mapLimited } from '../concurrency.js';
import type { Config } from '../config.js';
import { errorCode, TimeoutError, type ErrorCode } from '../errors.js';
import { deadlineSignal } from '../retry.js';
import { isReferrersTag } from '../oci/referrers.js';
import { parseReference } from '../oci/reference.js';
import type { RegistryClient } from '../oci/registry.js';
import { ReferrersCheck } from './referrers.js';
import type { SyncRule } from './rules.js';
import { isOciTag } from './patterns.js';
import { selectTags } from './select.js';

export interface SyncItem {
  readonly rule: number;
  /** `registry/repository:tag` as listed at the source. */
  readonly source: string;
  readonly tag: string;
  readonly sourceDigest: string;
  /** `repository:tag` in the target registry. */
  readonly target: string;
  readonly targetDigest?: string;
  /** `import`: missing or different in the target; `unchanged`: same digest already. */
  readonly action: 'import' | 'unchanged';
  /** `referrers`: the digest is the same, but the source has referrers the target lacks (rules with `referrers`). */
  readonly reason?: 'referrers';
  /** The import that brings it in line (for `import` items). */
  readonly request?: ImportRequest;
}

export interface SyncError {
  readonly rule: number;
  readonly tag?: string;
  readonly code: ErrorCode;
  readonly message: string;
}

export interface SyncPlan {
  readonly rules: number;
  readonly tagsSeen: number;
  /** Listed names outside the OCI tag grammar: left out before any pattern saw them. */
  readonly tagsInvalid: number;
  readonly items: readonly SyncItem[];
  readonly errors: readonly SyncError[];
}

export interface SyncPlanOptions {
  /** Target registry host. */
  readonly target: string;
  readonly targetClient: RegistryClient;
  /** A client for a source registry, with the rule's named credential. */
  readonly sourceClient: (registry: string, credential?: string) => RegistryClient;
  /** Tags a rule may list per source repository (MAX_TAGS). */
  readonly maxTags: number;
  /** Tags compared at once, over all rules (SYNC_CONCURRENCY). */
  readonly concurrency: number;
  /** The pass's deadline (SYNC_PASS_SECONDS): what is not listed or compared by then is reported as TIMEOUT. */
  readonly signal?: AbortSignal;
  /** Called as each tag's comparison ends (the CLI's progress line). */
  readonly onCompared?: () => void;
}

/** The deadline of one pass's listing and comparing (SYNC_PASS_SECONDS). */
export function passDeadline(config: Pick<Config, 'syncPassSeconds'>): { signal: AbortSignal; clear(): void } {
  const seconds = config.syncPassSeconds;
  return deadlineSignal(
    seconds * 1000,
    () =>
      new TimeoutError(
        `the sync pass ran ${seconds} s (SYNC_PASS_SECONDS); what it had not listed or compared is left to the next pass`,
      ),
  );
}

/**
 * Plans a pass; a failing rule (or tag) is reported in `errors` and does not stop the others. The tag lists of
 * the rules, then the tags of all rules, are compared `concurrency` at once: a pass costs about its slowest
 * round trips, not their sum. Items keep the order of the rules and their tags.
 */
export async function planSync(rules: readonly SyncRule[], o: SyncPlanOptions): Promise<SyncPlan> {
  const errors: SyncError[] = [];
  const listed = await mapLimited(rules, o.concurrency, async (rule, n) => {
    const src = parseReference(rule.source);
    try {
      const client = o.sourceClient(src.registry, rule.credential);
      const all = await client.listTags(src.repository, { maxTags: o.maxTags, setting: 'MAX_TAGS', signal: o.signal });
      // With referrers, the fallback and cosign tags travel with the image they name, not as images.
      const check = rule.referrers
        ? new ReferrersCheck({
            source: client,
            sourceRepository: src.repository,
            target: o.targetClient,
            targetRepository: rule.target ?? src.repository,
            sourceTags: new Set(all),
            types: rule.referrerTypes,
            signal: o.signal,
          })
        : undefined;
      const tags = await selectTags(check ? all.filter((t) => !isReferrersTag(t)) : all, rule.tags, {
        signal: o.signal,
      });
      return { n, rule, client, check, seen: all.length, invalid: all.filter((t) => !isOciTag(t)).length, tags };
    } catch (err) {
      errors.push({ rule: n, code: errorCode(err), message: (err as Error).message });
      return undefined;
    }
  });
  const pairs = listed.flatMap((l) => (l ? l.tags.map((tag) => ({ ...l, tag })) : []));
  const compared = await mapLimited(pairs, o.concurrency, ({ n, rule, client, check, tag }) =>
    compareTag(n, rule, tag, client, o, check)
      .catch((err: unknown): SyncError => ({ rule: n, tag, code: errorCode(err), message: (err as Error).message }))
      .finally(() => o.onCompared?.()),
  );
  const items: SyncItem[] = [];
  for (const item of compared) {
    if ('code' in item) errors.push(item);
    else items.push(item);
  }
  errors.sort((a, b) => a.rule - b.rule);
  return {
    rules: rules.length,
    tagsSeen: listed.reduce((sum, l) => sum + (l?.seen ?? 0), 0),
    tagsInvalid: listed.reduce((sum, l) => sum + (l?.invalid ?? 0), 0),
    items,
    errors,
  };
}

/** One tag of a rule, compared by HEAD on both sides. */
async function compareTag(
  n: number,
  rule: SyncRule,
  tag: string,
  client: RegistryClient,
  o: SyncPlanOptions,
  check?: ReferrersCheck,
): Promise<SyncItem | SyncError> {
  const src = parseReference(rule.source);
  const targetRepo = rule.target ?? src.repository;
  // the two sides at once: neither answer changes the other request
  const [head, current] = await Promise.all([
    client.headManifest(src.repository, tag, { signal: o.signal }),
    o.targetClient.headManifest(targetRepo, tag, { signal: o.signal }),
  ]);
  if (!head?.digest) {
    return {
      rule: n,
      tag,
      code: 'NO_DIGEST',
      message: `${src.registry}/${src.repository}:${tag} answered HEAD without Docker-Content-Digest`,
    };
  }
  // With a platform filter the target holds another digest than the source index: compare skipped.
  const sameDigest = current?.digest === head.digest && !rule.platforms?.length;
  const referrers = sameDigest && check ? await check.changed(head.digest) : false;
  const same = sameDigest && !referrers;
  return {
    rule: n,
    source: `${src.registry}/${src.repository}:${tag}`,
    tag,
    sourceDigest: head.digest,
    target: `${targetRepo}:${tag}`,
    targetDigest: current?.digest,
    action: same ? 'unchanged' : 'import',
    ...(referrers ? { reason: 'referrers' as const } : {}),
    request: same
      ? undefined
      : {
          source: `${src.registry}/${src.repository}:${tag}@${head.digest}`,
          target: o.target,
          images: [`${targetRepo}:${tag}`],
          force: true,
          platforms: rule.platforms,
          ...(rule.referrers ? { includeReferrers: true, referrerTypes: rule.referrerTypes } : {}),
        },
  };
}
