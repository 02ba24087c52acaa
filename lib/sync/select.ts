/**
 * Tag selection of a sync rule: include/exclude regular expressions, a semver range, and "keep the
 * newest N" by semver. Tags are semver-like when they read `1`, `1.2`, `1.2.3`, optionally with a `v`
 * and a suffix (`1.27-alpine` is the prerelease-like `1.27.0-alpine`, which ranges exclude unless they
 * ask for prereleases — `1.27` and `1.27-alpine` are different images, not versions of one).
 */
import { compare, parse, satisfies, type SemVer } from 'semver';
import { throwIfAborted } from '../retry.js';
import { compilePattern, isOciTag } from './patterns.js';
import type { SyncRule } from './rules.js';

const SEMVER_LIKE = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?$/;

/** The semver a tag stands for, or undefined when it is not version-like (`latest`, `stable`, `dev-1`). */
export function tagVersion(tag: string): SemVer | undefined {
  const m = SEMVER_LIKE.exec(tag);
  if (!m) return undefined;
  const text = `${m[1]}.${m[2] ?? 0}.${m[3] ?? 0}${m[4] ? `-${m[4]}` : ''}`;
  return parse(text) ?? undefined;
}

/** Matching yields to the event loop after this long: a pass over thousands of tags never holds the process. */
const TURN_MS = 10;

/**
 * The tags of `all` a rule selects, newest version first (non-version tags after, by name). Tags outside the OCI
 * tag grammar are left out before any pattern sees them; patterns run in linear time (patterns.ts), and the
 * matching yields to the event loop every TURN_MS, stopping when `signal` aborts (the pass's deadline).
 */
export async function selectTags(
  all: readonly string[],
  tags: SyncRule['tags'],
  o: { readonly signal?: AbortSignal } = {},
): Promise<string[]> {
  const include = (tags?.include ?? []).map(compilePattern);
  const exclude = (tags?.exclude ?? []).map(compilePattern);
  let picked: string[] = [];
  let turn = performance.now();
  for (const t of all) {
    if (performance.now() - turn > TURN_MS) {
      await new Promise<void>((r) => setImmediate(r));
      throwIfAborted(o.signal);
      turn = performance.now();
    }
    if (isOciTag(t) && (include.length === 0 || include.some((r) => r.test(t))) && !exclude.some((r) => r.test(t)))
      picked.push(t);
  }
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
