// Whether dist/ was built from the sources as they are now: `npm test` runs the built command
// (bin/oci-import.js → dist/cli/oci-import.cjs) and the local host from dist/, so a build older than the
// code it tests would test something else. Plain Node with no dependencies: ensure-deps.mjs (pretest,
// prestart) and the tests' CLI helper both ask it.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** What `npm run build` reads: the folders tsc compiles, its settings and the bundler script. */
const SOURCES = ['lib', 'functions', 'scripts', 'tsconfig.json', 'tsconfig.build.json'];
/** What it writes, the bundle last: the oldest of them dates the build. */
const OUTPUTS = ['dist/lib/cli/main.js', 'dist/cli/oci-import.cjs'];
const BUILT_FROM = /\.(?:ts|mts|mjs|json)$/;

function newest(path) {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return undefined;
  }
  if (!stat.isDirectory()) return BUILT_FROM.test(path) ? { path, mtimeMs: stat.mtimeMs } : undefined;
  let found;
  for (const name of readdirSync(path)) {
    const f = newest(join(path, name));
    if (f && (!found || f.mtimeMs > found.mtimeMs)) found = f;
  }
  return found;
}

/** Why the build in `root`/dist is missing or older than a source it is built from; undefined when it is current. */
export function staleBuild(root) {
  let built = Infinity;
  for (const output of OUTPUTS) {
    try {
      built = Math.min(built, statSync(join(root, output)).mtimeMs);
    } catch {
      return `${output} is missing`;
    }
  }
  for (const source of SOURCES) {
    const f = newest(join(root, source));
    if (f && f.mtimeMs > built) return `${f.path.slice(root.length + 1)} changed after the last build`;
  }
  return undefined;
}
