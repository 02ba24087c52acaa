// Bundles the CLI into one file (dist/cli/oci-import.cjs): loading ~80 modules of lib/ and node_modules one by
// one costs the CLI most of its start-up; one minified script, compiled with V8's code cache by
// bin/oci-import.js, costs a fraction. @azure/identity stays outside (loaded on the first managed-identity
// token only), and so does re2js (the sync rules' pattern engine: loaded by `oci-import sync` only). Run by
// `npm run build`, after tsc.
//
// `undici` is not bundled: the one call of its API the clients make (`dispatcher.request()`) goes through Node.js's own
// HTTP client in the CLI (lib/oci/node-http-dispatcher.ts), whose parser is native and whose modules come with
// Node.js's code cache. undici was half of the bundle (597 KiB with it, 304 without); a small image's copy took
// 100.9 ms with it and 89.7 ms without into a fresh target registry (21 interleaved runs each), 79.5 and 73.2 ms
// against registries kept running (CPU 62.9 -> 58.2 ms, 30 runs each; measured 2026-12-06, docs/benchmarks.md). The
// app itself (tsc's dist/) imports undici as usual: the sources guard needs its connector (lib/policy/sources.ts).
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

/**
 * The `undici` the CLI's modules import: an ES module with named exports, so that an import of anything else from
 * 'undici' fails the build ("No matching export") instead of being undefined.
 * - `Agent`: lib/oci/node-http-dispatcher.ts. Before its first request goes out (and after node:https is loaded for an
 *   https registry) it calls the launcher's hook (bin/oci-import.js), which sets the V8 flags of a run from the code
 *   cache then, once the command's Node.js modules are loaded (the argument parser, and TLS for an https registry: V8
 *   refuses Node.js's own code cache for a module compiled after a flag changed). Without the launcher (tests, the
 *   app) nothing is there to call.
 * - `buildConnector`: the sources guard's (lib/policy/sources.ts), which the CLI does not use (it reads what its user
 *   can reach: `guardSources: false`, lib/cli/main.ts); calling it fails loudly.
 */
const UNDICI_ON_NODE_HTTP = `
import { NodeHttpDispatcher } from ${JSON.stringify(join(process.cwd(), 'lib', 'oci', 'node-http-dispatcher.ts'))};
const BEFORE_FIRST_REQUEST = Symbol.for('oci-import.before-first-request');
export class Agent extends NodeHttpDispatcher {
  send(...args) {
    globalThis[BEFORE_FIRST_REQUEST]?.();
    return super.send(...args);
  }
}
export function buildConnector() {
  throw new Error('the CLI has no sources guard: its registries are not vetted by address (lib/policy/sources.ts)');
}
`;
const undiciOnNodeHttp = {
  name: 'undici-on-node-http',
  setup(b) {
    b.onResolve({ filter: /^undici$/ }, () => ({ path: 'undici-on-node-http', namespace: 'undici-on-node-http' }));
    b.onLoad({ filter: /.*/, namespace: 'undici-on-node-http' }, () => ({
      contents: UNDICI_ON_NODE_HTTP,
      loader: 'js',
      resolveDir: process.cwd(),
    }));
  },
};

const started = Date.now();
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
// V8 checks a code cache against the source's length, not its content: a cache of the previous bundle must not
// meet a new bundle of the same length.
// (and the licence notices of a bundle before, written only when a bundled package carries one: see below)
const stale = existsSync('dist/cli')
  ? readdirSync('dist/cli').filter((name) => name.endsWith('.cache') || name.endsWith('.LEGAL.txt'))
  : [];
for (const name of stale) rmSync(`dist/cli/${name}`);
const result = await build({
  entryPoints: ['lib/cli/main.ts'],
  outfile: 'dist/cli/oci-import.cjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: true,
  sourcemap: 'linked',
  external: ['@azure/identity', 're2js'],
  // bin/oci-import.js runs the bundle as a vm.Script, where an `import()` has no module loader ("A dynamic
  // import callback was not specified"; the vm option that lends it Node.js's own is lost once the script comes
  // from V8's code cache, on Node.js 20 at least): the externals loaded on demand are required instead.
  supported: { 'dynamic-import': false },
  // `oci-import --version` (lib/cli/help.ts): the package's version as it was built
  define: { __OCI_IMPORT_VERSION__: JSON.stringify(pkg.version) },
  logLevel: 'warning',
  // The bundle is ASCII, so the launcher reads it as Latin-1 (see below): esbuild escapes every other character in
  // strings, template literals and regular expressions, and minifying drops comments except the packages' licence
  // notices, which would go to their own file next to the bundle (undici's, bundled until 2026-12-06, named an author
  // with an "ä"); none of the packages bundled now carries one, and the build fails if one comes (below).
  legalComments: 'external',
  metafile: true,
  plugins: [undiciOnNodeHttp],
});
const output = Object.values(result.metafile.outputs).find((o) => o.entryPoint);
// zod's namespace object `z` (`import { z } from 'zod'`, or its default export) holds every part of zod, and so
// bundles all of it: 63 locales besides English, the JSON Schema converters… 950 KiB of bundle instead of 594,
// 1–4 ms more start-up of a small copy and 5–7 MB more peak RSS in the 300 MiB one (measured 2026-12-05).
// `import * as z from 'zod'`, as zod documents it, lets esbuild keep only what the code uses; one import of the
// other form anywhere brings it all back.
const locales = Object.entries(output?.inputs ?? {})
  .filter(([path, input]) => /zod\/v4\/locales\/(?!en\.js$|index\.js$)/.test(path) && input.bytesInOutput > 0)
  .map(([path]) => path);
if (locales.length > 0) {
  process.stderr.write(
    `build-cli: the bundle holds ${locales.length} of zod's locales (${locales[0]}…): import zod as \`import * as z from 'zod'\`\n`,
  );
  process.exit(1);
}
const fromUndici = Object.keys(output?.inputs ?? {}).filter((path) => path.includes('node_modules/undici/'));
if (fromUndici.length > 0) {
  process.stderr.write(`build-cli: the bundle holds undici's ${fromUndici[0]}: the CLI sends through node:http\n`);
  process.exit(1);
}
// A licence notice in a bundled package must ship with the package (package.json `files`, and the npm-pack test's list).
const legal = 'dist/cli/oci-import.cjs.LEGAL.txt';
if (existsSync(legal) && !pkg.files.includes(legal)) {
  process.stderr.write(
    `build-cli: a bundled package carries a licence notice (${legal}): add it to package.json files\n`,
  );
  process.exit(1);
}
// bin/oci-import.js reads the bundle as Latin-1: one byte per character, no UTF-8 decoding, and V8 keeps the source
// as one byte per character instead of two (a single character beyond ASCII anywhere makes the whole 0.3 MB text
// two bytes a character). Read that way, a byte beyond ASCII would be a different character than the source meant.
const bundleText = readFileSync('dist/cli/oci-import.cjs');
const beyondAscii = bundleText.findIndex((byte) => byte > 0x7f);
if (beyondAscii >= 0) {
  const around = bundleText.subarray(Math.max(0, beyondAscii - 40), beyondAscii + 20).toString('utf8');
  process.stderr.write(
    `build-cli: dist/cli/oci-import.cjs holds a byte beyond ASCII at ${beyondAscii} (${JSON.stringify(around)}), which the launcher would misread\n`,
  );
  process.exit(1);
}
const bytes = output?.bytes ?? 0;
process.stderr.write(
  `build-cli: dist/cli/oci-import.cjs, ${(bytes / 1024).toFixed(0)} KiB in ${Date.now() - started} ms\n`,
);
