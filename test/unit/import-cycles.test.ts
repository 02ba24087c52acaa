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

/** What each folder of lib/ must not import (its README says why); `root` is lib/*.ts. */
const FORBIDDEN: Record<string, readonly string[]> = {
  root: ['api', 'cli', 'engine', 'jobs', 'sync'],
  oci: ['api', 'azure', 'cli', 'engine', 'jobs', 'policy', 'sync'],
  azure: ['api', 'cli', 'engine', 'jobs', 'policy', 'sync'],
  policy: ['api', 'cli', 'engine', 'jobs', 'sync'],
  engine: ['api', 'azure', 'cli', 'jobs', 'policy', 'sync'],
  sync: ['api', 'azure', 'cli', 'jobs', 'policy'],
  jobs: ['api', 'cli'],
  api: ['cli', 'engine', 'sync'],
  cli: ['api', 'jobs'],
};
/** Modules any folder may import whatever its rule: contracts with no import of lib/. */
const LEAVES = new Set(['lib/api/status-view.ts']);

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
    const targets = info.importedFiles.map((i) => i.fileName).filter((name) => name.startsWith('.'))
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

describe('import graph of lib/ and functions/', () => {
  const graph = importGraph(FOLDERS.flatMap((f) => sources(join(ROOT, f))));

  it('reads the imports, type-only and re-exports included', () => {
    expect(graph.size).toBeGreaterThan(50);
    // a type-only import and an export-from are edges
    expect(graph.get('lib/jobs/service.ts')).toContain('lib/api/status-view.ts');
    expect(graph.get('lib/engine/types.ts')).toContain('lib/api/status-view.ts');
  });

  it('finds a cycle when there is one', () => {
    expect(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a', 'd']], ['d', []]]))).toEqual([['a', 'b', 'c']]);
    expect(cycles(new Map([['a', ['b']], ['b', []]]))).toEqual([]);
  });

  it('leaves are leaves', () => {
    for (const leaf of LEAVES) expect(graph.get(leaf), leaf).toEqual([]);
  });

  it('each folder of lib/ imports only what its README allows (lib/README.md)', () => {
    const broken: string[] = [];
    for (const [from, targets] of graph) {
      const forbidden = FORBIDDEN[folderOf(from)] ?? [];
      for (const to of targets) {
        if (forbidden.includes(folderOf(to)) && !LEAVES.has(to)) broken.push(`${from} → ${to}`);
      }
    }
    expect(broken, `imports across a folder's rule:\n${broken.join('\n')}`).toEqual([]);
  });

  it('has no cycle', () => {
    const found = cycles(graph).map((c) => [...c, c[0]].join(' → '));
    expect(found, `import cycles:\n${found.join('\n')}`).toEqual([]);
  });
});
