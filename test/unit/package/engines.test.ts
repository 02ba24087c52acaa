/**
 * `engines.node` says the floor the code needs: the highest minimum any runtime dependency declares (from
 * package-lock.json), not a guess. Azure runs the app on the template's Node.js (22); CI tests both this machine's
 * Node.js and 22 (.ci/run).
 */
import { readFileSync } from 'node:fs';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

const read = (name: string) =>
  JSON.parse(readFileSync(new URL(`../../../${name}`, import.meta.url), 'utf8')) as Record<string, unknown>;

describe('engines.node', () => {
  it('is the highest floor among the runtime dependencies, and the Node.js this runs on meets it', () => {
    const pkg = read('package.json') as { engines: { node: string } };
    const lock = read('package-lock.json') as {
      packages: Record<string, { dev?: boolean; devOptional?: boolean; engines?: { node?: string } }>;
    };
    let floor = '0.0.0';
    let from = '';
    for (const [path, info] of Object.entries(lock.packages)) {
      const range = info.engines?.node;
      if (!path || info.dev || info.devOptional || !range || !semver.validRange(range)) continue;
      const min = semver.minVersion(range)!.version;
      if (semver.gt(min, floor)) [floor, from] = [min, path];
    }
    expect(semver.minVersion(pkg.engines.node)?.version, `the highest floor comes from ${from}`).toBe(floor);
    expect(semver.satisfies(process.versions.node, pkg.engines.node)).toBe(true);
  });
});
