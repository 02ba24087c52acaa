/**
 * No import cycles in lib/ and functions/: every `import … from`, `import type`, `export … from` and `import()`
 * of a relative module is an edge (a type-only import is one too: it is a seam a reader follows as much as a
 * value import). Read with the TypeScript compiler's own pre-processor, so strings and comments that look like
 * imports are not taken for them. A cycle fails the test with its modules in order.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const FOLDERS = ['lib', 'functions'];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/**
 * A "Must not import" list as lib/README.md and the folder READMEs write it: folder names separated by commas, an
 * exception in parentheses (`api (but \`api/status-view.ts\`)`), or "any other folder of lib/".
 */
export function parseRule(
  text: string,
  self: string,
  folders: readonly string[],
): { forbidden: string[]; except: string[] } {
  const except = [...text.matchAll(/\(but ([^)]*)\)/g)].flatMap((m) =>
    [...m[1]!.matchAll(/`([^`]+)`/g)].map((e) => `lib/${e[1]!}`),
  );
  if (/any other folder of lib\//.test(text))
    return { forbidden: folders.filter((f) => f !== self && f !== 'root'), except };
  const forbidden = text
    .replace(/\([^)]*\)/g, '')
    .replace(/[`.]/g, '')
    .split(',')
    .map((w) => w.trim().replace(/\/$/, ''))
    .filter(Boolean);
  return { forbidden: forbidden.sort(), except };
}

/** The table of lib/README.md: folder (`root` for lib/*.ts) → what it must not import. */
export function readmeRules(readme: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of readme.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const folder = /^`(?:lib\/\*\.ts`.*\(root\)|([a-z-]+)\/`)$/.exec(cells[1] ?? '');
    if (folder && cells.length >= 5) rows.set(folder[1] ?? 'root', cells[cells.length - 2]!);
  }
  return rows;
}

const TABLE = readmeRules(readFileSync(join(ROOT, 'lib/README.md'), 'utf8'));
const FOLDER_NAMES = [...TABLE.keys()];
/** What each folder of lib/ must not import (lib/README.md's table, which each folder's README repeats). */
const RULES = new Map([...TABLE].map(([folder, text]) => [folder, parseRule(text, folder, FOLDER_NAMES)]));
const FORBIDDEN: Record<string, readonly string[]> = Object.fromEntries([...RULES].map(([f, r]) => [f, r.forbidden]));
/** Modules any folder may import whatever its rule: contracts with no import of lib/ (the rules' "but" exceptions). */
const LEAVES = new Set([...RULES.values()].flatMap((r) => r.except));

/** `oci` for lib/oci/registry.ts, `root` for lib/config.ts, `functions` for functions/imports.ts. */
function folderOf(module: string): string {
  const parts = module.split('/');
  if (parts[0] !== 'lib') return parts[0]!;
  return parts.length > 2 ? parts[1]! : 'root';
}

/** Module (path from the root) → the modules of this repository it imports. */
export function importGraph(files: readonly string[]): Map<string, string[]> {
  const known = new Set(files.map((f) => relative(ROOT, f)));
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets = info.importedFiles
      .map((i) => i.fileName)
      .filter((name) => name.startsWith('.'))
      .map((name) => relative(ROOT, resolve(dirname(file), name.replace(/\.js$/, '.ts'))))
      .filter((name) => known.has(name));
    graph.set(relative(ROOT, file), [...new Set(targets)].sort());
  }
  return graph;
}

/**
 * The cycles a depth-first search meets (at least one whenever the graph has any; not every elementary cycle),
 * each once, as its modules from the smallest name.
 */
export function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const found = new Map<string, string[]>();
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): void => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') {
        const cycle = stack.slice(stack.indexOf(next));
        const start = cycle.indexOf([...cycle].sort()[0]!);
        const rotated = [...cycle.slice(start), ...cycle.slice(0, start)];
        found.set(rotated.join(' → '), rotated);
      } else if (!state.has(next)) {
        visit(next);
      }
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return [...found.values()];
}

/** The imports of `graph` across a folder's rule, as `from → to`. */
function brokenRules(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const broken: string[] = [];
  for (const [from, targets] of graph) {
    const forbidden = FORBIDDEN[folderOf(from)] ?? [];
    for (const to of targets) {
      if (forbidden.includes(folderOf(to)) && !LEAVES.has(to)) broken.push(`${from} → ${to}`);
    }
  }
  return broken;
}

describe('import graph of lib/ and functions/', () => {
  const graph = importGraph(FOLDERS.flatMap((f) => sources(join(ROOT, f))));

  it('reads the imports, type-only and re-exports included', () => {
    expect(graph.size).toBeGreaterThan(50);
    // a type-only import and an export-from are edges
    expect(graph.get('lib/service/service.ts')).toContain('lib/api/status-view.ts');
    expect(graph.get('lib/engine/types.ts')).toContain('lib/api/status-view.ts');
  });

  it('finds a cycle when there is one', () => {
    expect(
      cycles(
        new Map([
          ['a', ['b']],
          ['b', ['c']],
          ['c', ['a', 'd']],
          ['d', []],
        ]),
      ),
    ).toEqual([['a', 'b', 'c']]);
    expect(
      cycles(
        new Map([
          ['a', ['b']],
          ['b', []],
        ]),
      ),
    ).toEqual([]);
  });

  it("reads a rule for every folder of lib/ from lib/README.md, and each folder's README says the same", () => {
    const folders = readdirSync(join(ROOT, 'lib')).filter((f) => statSync(join(ROOT, 'lib', f)).isDirectory());
    expect([...FOLDER_NAMES].sort()).toEqual(['root', ...folders].sort());
    for (const folder of folders) {
      const own = /^Must not import: (.*?)(?:\.(?: |$)|$)/m.exec(
        readFileSync(join(ROOT, 'lib', folder, 'README.md'), 'utf8'),
      );
      expect(own, `lib/${folder}/README.md has a "Must not import:" line`).not.toBeNull();
      expect(parseRule(own![1]!, folder, FOLDER_NAMES).forbidden, `lib/${folder}/README.md`).toEqual(FORBIDDEN[folder]);
    }
    expect(FORBIDDEN.engine).toContain('service');
    expect(LEAVES).toEqual(new Set(['lib/api/status-view.ts']));
  });

  it('reads a rule as the READMEs write it', () => {
    expect(parseRule('api (but `api/status-view.ts`), cli, `store/`.', 'x', ['root', 'api', 'cli', 'store'])).toEqual({
      forbidden: ['api', 'cli', 'store'],
      except: ['lib/api/status-view.ts'],
    });
    expect(parseRule('any other folder of lib/ (only the root)', 'oci', ['root', 'oci', 'api'])).toEqual({
      forbidden: ['api'],
      except: [],
    });
  });

  it('leaves are leaves', () => {
    for (const leaf of LEAVES) expect(graph.get(leaf), leaf).toEqual([]);
  });

  it("finds an import across a folder's rule when there is one", () => {
    expect(
      brokenRules(
        new Map([
          ['lib/store/store.ts', ['lib/service/service.ts', 'lib/api/status-view.ts', 'lib/config.ts']],
          ['lib/service/service.ts', ['lib/store/store.ts', 'lib/api/http.ts']],
          ['lib/oci/registry.ts', ['lib/telemetry/index.ts']],
        ]),
      ),
    ).toEqual([
      'lib/store/store.ts → lib/service/service.ts',
      'lib/service/service.ts → lib/api/http.ts',
      'lib/oci/registry.ts → lib/telemetry/index.ts',
    ]);
  });

  it('each folder of lib/ imports only what its README allows (lib/README.md)', () => {
    const broken = brokenRules(graph);
    expect(broken, `imports across a folder's rule:\n${broken.join('\n')}`).toEqual([]);
  });

  it('has no cycle', () => {
    const found = cycles(graph).map((c) => [...c, c[0]].join(' → '));
    expect(found, `import cycles:\n${found.join('\n')}`).toEqual([]);
  });
});
