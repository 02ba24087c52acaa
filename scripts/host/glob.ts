/**
 * The small glob subset package.json `main` uses for Functions apps (Node 20 has no fs.glob):
 * `*`, `?`, `**`, `{a,b}` and `[abc]`; relative to the app root or absolute. Files only, sorted.
 */
import { readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve, sep } from 'node:path';

function expandBraces(pattern: string): string[] {
  const open = pattern.indexOf('{');
  if (open < 0) return [pattern];
  let depth = 0;
  for (let i = open; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '{') depth++;
    else if (ch === '}' && --depth === 0) {
      const inner = pattern.slice(open + 1, i);
      const options: string[] = [];
      let level = 0;
      let current = '';
      for (const c of inner) {
        if (c === '{') level++;
        if (c === '}') level--;
        if (c === ',' && level === 0) {
          options.push(current);
          current = '';
          continue;
        }
        current += c;
      }
      options.push(current);
      const before = pattern.slice(0, open);
      const after = pattern.slice(i + 1);
      return options.flatMap((o) => expandBraces(`${before}${o}${after}`));
    }
  }
  return [pattern];
}

function segmentRegex(segment: string): RegExp {
  let re = '^';
  for (let i = 0; i < segment.length; i++) {
    const ch = segment[i]!;
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const close = segment.indexOf(']', i + 1);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      const body = segment
        .slice(i + 1, close)
        .replace(/^!/, '^')
        .replace(/\\/g, '\\\\');
      re += `[${body}]`;
      i = close;
    } else re += ch.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`${re}$`);
}

const hasMagic = (s: string): boolean => /[*?[]/.test(s);

function walk(dir: string, segments: string[], out: Set<string>): void {
  if (segments.length === 0) {
    try {
      if (statSync(dir).isFile()) out.add(dir);
    } catch {
      // vanished
    }
    return;
  }
  const [head, ...rest] = segments as [string, ...string[]];
  if (head === '**') {
    walk(dir, rest, out);
    for (const entry of safeReaddir(dir)) {
      if (entry.isDirectory() && entry.name !== 'node_modules' && !entry.name.startsWith('.'))
        walk(join(dir, entry.name), segments, out);
    }
    return;
  }
  if (!hasMagic(head)) {
    walk(join(dir, head), rest, out);
    return;
  }
  const re = segmentRegex(head);
  for (const entry of safeReaddir(dir)) {
    if (!re.test(entry.name)) continue;
    if (entry.name.startsWith('.') && !head.startsWith('.')) continue;
    walk(join(dir, entry.name), rest, out);
  }
}

function safeReaddir(dir: string) {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

/** Absolute paths of the files matching `pattern` (relative to `root` unless absolute). */
export function expandGlob(root: string, pattern: string): string[] {
  const out = new Set<string>();
  for (const p of expandBraces(pattern.replace(/\\/g, '/'))) {
    const absolute = isAbsolute(p);
    const base = absolute ? sep : resolve(root);
    const segments = p.split('/').filter((s) => s !== '' && s !== '.');
    walk(base, segments, out);
  }
  return [...out].sort();
}
