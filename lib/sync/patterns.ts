/**
 * Tag patterns of sync rules, matched in linear time. A rule's `include`/`exclude` patterns meet whatever tags a
 * source lists; JavaScript's backtracking engine takes exponential time on patterns like `^([0-9]+\.?)+$` against
 * a hostile 35-character tag (a frozen worker: every HTTP call of the process waits). RE2's automaton takes time
 * linear in the tag's length whatever the pattern, so the patterns are RE2 syntax — JavaScript's, less lookarounds
 * and backreferences, which need backtracking: a rule using them is refused when the rules load, with RE2's reason.
 * The engine is re2js, a JavaScript port of RE2 (no native build), https://github.com/le0pard/re2js.
 *
 * Tags are also checked against the OCI tag grammar before any pattern sees them: anything else is no tag a
 * registry may serve, and at most 128 characters keeps every match short.
 */
import { RE2JS } from 're2js';

/** The distribution spec's tag grammar: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`. */
const OCI_TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

export function isOciTag(tag: unknown): tag is string {
  return typeof tag === 'string' && OCI_TAG.test(tag);
}

export interface TagPattern {
  readonly source: string;
  /** Whether the pattern matches anywhere in `tag` (as RegExp.prototype.test). */
  test(tag: string): boolean;
}

/** Compiles a pattern; throws an Error saying why RE2 refuses it. */
export function compilePattern(source: string): TagPattern {
  let re: RE2JS;
  try {
    re = RE2JS.compile(source);
  } catch (err) {
    const reason = (err as Error).message.replace(/^error parsing regexp: /, '');
    throw new Error(
      `not a pattern the linear-time matcher takes (RE2 syntax: no lookarounds or backreferences): ${reason}`,
    );
  }
  return { source, test: (tag) => re.matcher(tag).find() };
}
