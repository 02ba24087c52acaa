/**
 * Which target repositories a deployment may write at all (TARGET_REPOSITORIES): checked when a request is taken
 * (lib/request/request.ts), again in its plan step (lib/service/steps.ts), and for every sync rule (lib/sync/rules.ts).
 * The target allow-list, beside the source one (sources.ts).
 */
import { OciImportError } from '../errors.js';

/**
 * Whether a repository matches one of TARGET_REPOSITORIES' patterns: `*` matches any characters, `/`
 * included (`mirror/*` covers `mirror/library/nginx`); everything else literally, case-sensitively (as
 * repository names are lower-case anyway).
 */
export function repositoryAllowed(repository: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => globRegExp(p).test(repository));
}

const cache = new Map<string, RegExp>();
function globRegExp(pattern: string): RegExp {
  let re = cache.get(pattern);
  if (!re) {
    re = new RegExp(
      `^${pattern
        .split('*')
        .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}$`,
    );
    cache.set(pattern, re);
  }
  return re;
}

/** Throws REPOSITORY_NOT_ALLOWED for the first target repository outside the patterns. */
export function checkTargetRepositories(
  refs: readonly { readonly repository: string }[],
  patterns: readonly string[],
): void {
  for (const ref of refs) {
    if (!repositoryAllowed(ref.repository, patterns)) {
      throw new OciImportError(
        'REPOSITORY_NOT_ALLOWED',
        `repository ${ref.repository} is outside what this deployment may write (TARGET_REPOSITORIES: ${patterns.join(', ')})`,
        { side: 'request' },
      );
    }
  }
}
