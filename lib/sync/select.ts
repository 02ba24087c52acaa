/**
 * Tag selection of a sync rule: include/exclude regular expressions, a semver range, and "keep the
 * newest N" by semver. Tags are semver-like when they read `1`, `1.2`, `1.2.3`, optionally with a `v`
 * and a suffix (`1.27-alpine` is the prerelease-like `1.27.0-alpine`, which ranges exclude unless they
 * ask for prereleases — `1.27` and `1.27-alpine` are different images, not versions of one).
 */
import { compare, parse, satisfies, type SemVer } from 'semver';
import type { SyncRule } from './rules.js';

const SEMVER_LIKE = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?$/;

/** The semver a tag stands for, or undefined when it is not version-like (`latest`, `stable`, `dev-1`). */
export function tagVersion(tag: string): SemVer | undefined {
  const m = SEMVER_LIKE.exec(tag);
  if (!m) return undefined;
  const text = `${m[1]}.${m[2] ?? 0}.${m[3] ?? 0}${m[4] ? `-${m[4]}` : ''}`;
  return parse(text) ?? undefined;
}

/** The tags of `all` a rule selects, newest version first (non-version tags after, by name). */
export function selectTags(all: readonly string[], tags: SyncRule['tags']): string[] {
  const include = (tags?.include ?? []).map((r) => new RegExp(r));
  const exclude = (tags?.exclude ?? []).map((r) => new RegExp(r));
  let picked = all.filter((t) => (include.length === 0 || include.some((r) => r.test(t))) && !exclude.some((r) => r.test(t)));
  if (tags?.semver) {
    const range = tags.semver;
    picked = picked.filter((t) => {
      const v = tagVersion(t);
      return v !== undefined && satisfies(v, range);
    });
  }
  const ordered = [...picked].sort((a, b) => {
    const va = tagVersion(a);
    const vb = tagVersion(b);
    if (va && vb) return compare(vb, va) || a.localeCompare(b);
    if (va) return -1;
    if (vb) return 1;
    return a.localeCompare(b);
  });
  if (tags?.keepNewest !== undefined) {
    return ordered.filter((t) => tagVersion(t) !== undefined).slice(0, tags.keepNewest);
  }
  return ordered;
}
