/**
 * The settings catalogue (lib/config.ts `SETTINGS`) is the only list of settings: every variable lib/ reads from
 * an environment is in it (or is one the platform sets, `PLATFORM_VARIABLES`), and the CLI's help lists the
 * settings it reads from it.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PLATFORM_VARIABLES, SETTINGS } from '../../lib/config.js';
import { USAGE } from '../../lib/cli/main.js';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** Names read as `env.NAME`, `env['NAME']`, `env?.NAME` or through a reader taking `(env, 'NAME'`. */
const READS = [
  /\benv\??\.([A-Za-z_][A-Za-z0-9_]*)/g,
  /\benv\[['"]([^'"]+)['"]\]/g,
  /\(\s*env,\s*'([A-Za-z_][A-Za-z0-9_]*)'/g,
];

function catalogued(name: string): boolean {
  return (
    SETTINGS.some((s) => s.name === name || (!s.pattern && name.startsWith(`${s.name}__`))) ||
    PLATFORM_VARIABLES.some((p) => p.name === name)
  );
}

describe('the settings catalogue', () => {
  it('holds every variable lib/ reads from an environment', () => {
    const read = new Map<string, string>();
    for (const file of files('lib')) {
      const text = readFileSync(file, 'utf8');
      for (const re of READS) for (const m of text.matchAll(re)) if (!read.has(m[1]!)) read.set(m[1]!, file);
    }
    expect(read.size).toBeGreaterThan(20);
    expect([...read].filter(([name]) => !catalogued(name)).map(([name, file]) => `${name} (${file})`)).toEqual([]);
  });

  it('lists every setting the CLI reads in its help, with its default', () => {
    for (const s of SETTINGS.filter((x) => x.cli)) expect(USAGE).toContain(s.name);
    expect(USAGE).toContain('MAX_MANIFESTS (50)');
  });

  it('names each setting once', () => {
    const names = SETTINGS.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
  });
});
