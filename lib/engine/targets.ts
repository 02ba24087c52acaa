/**
 * What an import writes in the target registry, computed in one place for the request check, the job
 * record and the plan: `images` (`repository:tag`, `latest` when the tag is left out), else
 * `repository` (by digest, no tag), else the source's own repository and tag (as `az acr import`
 * without `--image`). Which repositories a deployment may write at all (TARGET_REPOSITORIES)
 * is policy: lib/policy/targets.ts.
 */
import { parseReference, parseRepositoryTag } from '../oci/reference.js';
import { ImportError } from './errors.js';
import type { TargetRef } from './types.js';

export interface TargetSpec {
  readonly source: string;
  readonly images?: readonly string[];
  readonly repository?: string;
}

export function targetRefs(spec: TargetSpec): TargetRef[] {
  const refs: TargetRef[] = [];
  for (const image of spec.images ?? []) {
    const parsed = parseRepositoryTag(image);
    if (parsed.digest) {
      throw new ImportError(
        'INVALID_REQUEST',
        `target image "${image}" has a digest; the digest always comes from the source — give repository:tag, or use repository to import by digest only`,
        { side: 'request' },
      );
    }
    refs.push({ repository: parsed.repository, tag: parsed.tag ?? 'latest' });
  }
  if (spec.repository) {
    const parsed = parseRepositoryTag(spec.repository);
    if (parsed.tag || parsed.digest) {
      throw new ImportError(
        'INVALID_REQUEST',
        `repository "${spec.repository}" must be a repository name without tag or digest`,
        { side: 'request' },
      );
    }
    if (!refs.some((r) => r.repository === spec.repository)) refs.push({ repository: spec.repository });
  }
  if (refs.length === 0) {
    const src = parseReference(spec.source);
    const tag = src.tag ?? (src.digest ? undefined : 'latest');
    refs.push(tag ? { repository: src.repository, tag } : { repository: src.repository });
  }
  return refs;
}

/** `registry/repository:tag`, or `registry/repository` for a by-digest import. */
export function targetName(registry: string, ref: TargetRef): string {
  return `${registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}`;
}

/** Target repositories in the order their blobs are copied (later ones mount from the first). */
export function targetRepositories(refs: readonly TargetRef[]): string[] {
  return [...new Set(refs.map((r) => r.repository))];
}
