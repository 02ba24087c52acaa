/**
 * Finish an import once every blob is in place: push manifests by digest, children before the index
 * that lists them (then the referrers, and their fallback or cosign tags: lib/engine/referrer-links.ts),
 * then point every target tag at the root. A tag that already points at the digest is
 * left alone (immutable-tag registries refuse even an identical rewrite); one that points elsewhere
 * moves only with `force`. Every step is idempotent: finalize may run twice.
 */
import { manifestFrom } from '../oci/manifest.js';
import type { RegistryClient } from '../oci/registry.js';
import { throwIfAborted } from '../retry.js';
import type { Digest } from '../oci/digest.js';
import { ImportError } from './errors.js';
import { linkReferrers } from './referrer-links.js';
import { targetRepositories } from './targets.js';
import type { FinalizeResult, ImportPlan } from './types.js';

export async function finalize(plan: ImportPlan, target: RegistryClient, signal?: AbortSignal): Promise<FinalizeResult> {
  for (const repository of targetRepositories(plan.target.refs)) {
    // manifests PUT now, and whether the registry took their `subject` into its referrers API
    const processed = new Map<Digest, boolean>();
    for (const m of plan.manifests) {
      throwIfAborted(signal);
      const head = await target.headManifest(repository, m.digest, { signal });
      if (head) continue;
      const put = await target.putManifest(repository, m.digest, manifestFrom(Buffer.from(m.bytes, 'base64'), m.mediaType), { signal });
      processed.set(m.digest, put.subject !== undefined);
    }
    if (plan.referrers?.length) await linkReferrers(plan, target, repository, processed, signal);
  }
  const root = plan.manifests.find((m) => m.digest === plan.root.digest);
  if (!root) throw new ImportError('INVALID_REQUEST', `internal: root manifest ${plan.root.digest} is not in the plan`, { side: 'storage' });
  const rootManifest = manifestFrom(Buffer.from(root.bytes, 'base64'), root.mediaType);

  const tagged: string[] = [];
  const unchanged: string[] = [];
  for (const ref of plan.target.refs) {
    if (!ref.tag) continue;
    const name = `${ref.repository}:${ref.tag}`;
    const head = await target.headManifest(ref.repository, ref.tag, { signal });
    if (head?.digest === plan.root.digest) {
      unchanged.push(name);
      continue;
    }
    if (head && !plan.force) {
      throw new ImportError('TAG_EXISTS', `tag ${name} already exists on ${plan.target.registry} (${head.digest ?? 'unknown digest'}); use force to overwrite it`, { side: 'target' });
    }
    await target.putManifest(ref.repository, ref.tag, rootManifest, { signal });
    tagged.push(name);
  }
  return { digest: plan.root.digest, mediaType: plan.root.mediaType, tagged, unchanged };
}
