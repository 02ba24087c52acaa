/**
 * Finish an import once every blob is in place: push manifests by digest, children before the index
 * that lists them, then point every target tag at the root. A tag that already points at the digest is
 * left alone (immutable-tag registries refuse even an identical rewrite); one that points elsewhere
 * moves only with `force`. Every step is idempotent: finalize may run twice.
 */
import { ImportError } from '../oci/errors.js';
import { manifestFrom } from '../oci/manifest.js';
import type { RegistryClient } from '../oci/registry.js';
import type { FinalizeResult, ImportPlan } from './types.js';

export async function finalize(plan: ImportPlan, target: RegistryClient): Promise<FinalizeResult> {
  const repositories = [...new Set(plan.target.refs.map((r) => r.repository))];
  for (const repo of repositories) {
    for (const m of plan.manifests) {
      const head = await target.headManifest(repo, m.digest);
      if (head) continue;
      await target.putManifest(repo, m.digest, manifestFrom(Buffer.from(m.bytes, 'base64'), m.mediaType));
    }
  }
  const root = plan.manifests.find((m) => m.digest === plan.root.digest);
  if (!root) throw new Error(`internal: root manifest ${plan.root.digest} is not in the plan`);
  const rootManifest = manifestFrom(Buffer.from(root.bytes, 'base64'), root.mediaType);

  const tagged: string[] = [];
  const unchanged: string[] = [];
  for (const ref of plan.target.refs) {
    if (!ref.tag) continue;
    const name = `${ref.repository}:${ref.tag}`;
    const head = await target.headManifest(ref.repository, ref.tag);
    if (head?.digest === plan.root.digest) {
      unchanged.push(name);
      continue;
    }
    if (head && !plan.force) {
      throw new ImportError('TAG_EXISTS', `tag ${name} already exists on ${plan.target.registry} (${head.digest ?? 'unknown digest'}); use force to overwrite it`);
    }
    await target.putManifest(ref.repository, ref.tag, rootManifest);
    tagged.push(name);
  }
  return { digest: plan.root.digest, mediaType: plan.root.mediaType, tagged, unchanged };
}
