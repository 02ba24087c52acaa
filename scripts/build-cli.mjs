// Bundles the CLI into one file (dist/cli/oci-import.cjs): loading ~80 modules of lib/ and node_modules one by
// one costs the CLI most of its start-up; one minified script, compiled with V8's code cache by
// bin/oci-import.js, costs a fraction. @azure/identity stays outside (loaded on the first managed-identity
// token only), and so does re2js (the sync rules' pattern engine: loaded by `oci-import sync` only). Run by
// `npm run build`, after tsc.
//
// `undici` is bundled as the parts the code uses (Agent, buildConnector, a Dispatcher's request): its index also
// loads fetch, WebSocket, cookies and cache storage, and through them Node.js's own copy of undici, which cost a
// small-image import a tenth of its time. The app itself (tsc's dist/) imports the whole package as usual.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';

/**
 * The `undici` the CLI's modules import, from the package's own modules. An ES module with named exports, so that
 * an import of anything else from 'undici' fails the build ("No matching export") instead of being undefined.
 */
const UNDICI_PARTS = `
import Dispatcher from 'undici/lib/dispatcher/dispatcher';
import api from 'undici/lib/api';
import Agent from 'undici/lib/dispatcher/agent';
import buildConnector from 'undici/lib/core/connect';
// what undici's index does: every dispatcher gets request(), stream(), pipeline()…
Object.assign(Dispatcher.prototype, api);
export { Agent, buildConnector, Dispatcher };
`;
const undiciParts = {
  name: 'undici-parts',
  setup(b) {
    b.onResolve({ filter: /^undici$/ }, () => ({ path: 'undici-parts', namespace: 'undici-parts' }));
    b.onLoad({ filter: /.*/, namespace: 'undici-parts' }, () => ({
      contents: UNDICI_PARTS,
      loader: 'js',
      resolveDir: process.cwd(),
    }));
  },
};

/**
 * undici's HTTP/2 client, loaded when a connection first speaks HTTP/2 instead of when undici is: its module loads
 * Node.js's http2 (about 2 ms of every run's start-up), and a connection speaks HTTP/2 only when ALPN chose it,
 * which needs `allowH2`, an option the code does not set. The module stays in the bundle, behind this wrapper.
 */
const lazyH2 = {
  name: 'lazy-client-h2',
  setup(b) {
    b.onResolve({ filter: /^\.\/client-h2\.js$/ }, (args) =>
      args.importer.endsWith(join('undici', 'lib', 'dispatcher', 'client.js'))
        ? { path: join(args.resolveDir, 'client-h2.js'), namespace: 'lazy-client-h2' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy-client-h2' }, (args) => ({
      contents: `let real;
module.exports = function connectH2(...args) {
  real ??= require(${JSON.stringify(args.path)});
  return real(...args);
};`,
      loader: 'js',
      resolveDir: dirname(args.path),
    }));
  },
};

/**
 * undici checks its own invariants with `assert(value)`, nothing else of node:assert: the same check, without loading
 * Node.js's assert module and its AssertionError machinery (0.6 ms of every run's start-up, measured 2026-12-05). A
 * failed check throws as before (code ERR_ASSERTION). The build fails if undici starts using more of the module.
 */
const undiciAssert = {
  name: 'undici-assert',
  setup(b) {
    b.onResolve({ filter: /^node:assert$/ }, (args) =>
      args.importer.includes(join('node_modules', 'undici', 'lib'))
        ? { path: 'undici-assert', namespace: 'undici-assert' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'undici-assert' }, () => ({
      contents: `'use strict';
module.exports = function assert(value, message) {
  if (value) return;
  if (message instanceof Error) throw message;
  const err = new Error(message === undefined ? 'The expression evaluated to a falsy value' : String(message));
  err.code = 'ERR_ASSERTION';
  throw err;
};`,
      loader: 'js',
    }));
  },
};

/**
 * Text edits of undici's own modules, each exact: the build fails when undici's text no longer matches.
 *
 * node:http (1 ms of start-up, measured 2026-12-05) is loaded by undici for two things: a Client's default
 * `maxHeaderSize` (the CLI's agents give theirs: lib/oci/transport.ts MAX_HEADER_BYTES) and telling an
 * http.IncomingMessage apart when it destroys a stream (none can exist before node:http is loaded). Both now load it
 * when they run; the rest of the two modules is unchanged.
 *
 * undici compiles its HTTP parser (llhttp, WebAssembly) when its first connection is made: it first calls the
 * launcher's hook (bin/oci-import.js), which sets the V8 flags of a run from the code cache then, once the command's
 * Node.js modules are loaded (the argument parser, and TLS for an https registry: V8 refuses Node.js's own code
 * cache for a module compiled after a flag changed). Without the launcher (tests, the app) nothing is there to call.
 */
const UNDICI_EDITS = [
  {
    file: join('undici', 'lib', 'core', 'util.js'),
    edits: [
      ["const { IncomingMessage } = require('node:http')\n", ''],
      [
        'if (Object.getPrototypeOf(stream).constructor === IncomingMessage) {',
        "if (Object.getPrototypeOf(stream).constructor?.name === 'IncomingMessage' && " +
          "Object.getPrototypeOf(stream).constructor === require('node:http').IncomingMessage) {",
      ],
    ],
  },
  {
    file: join('undici', 'lib', 'dispatcher', 'client.js'),
    edits: [
      ["const http = require('node:http')\n", ''],
      [
        'const getDefaultNodeMaxHeaderSize = http &&\n' +
          '  http.maxHeaderSize &&\n' +
          '  Number.isInteger(http.maxHeaderSize) &&\n' +
          '  http.maxHeaderSize > 0\n' +
          '  ? () => http.maxHeaderSize\n' +
          "  : () => { throw new InvalidArgumentError('http module not available or http.maxHeaderSize invalid') }",
        'const getDefaultNodeMaxHeaderSize = () => {\n' +
          "  const { maxHeaderSize } = require('node:http')\n" +
          '  if (Number.isInteger(maxHeaderSize) && maxHeaderSize > 0) return maxHeaderSize\n' +
          "  throw new InvalidArgumentError('http module not available or http.maxHeaderSize invalid')\n" +
          '}',
      ],
    ],
  },
  {
    file: join('undici', 'lib', 'dispatcher', 'client-h1.js'),
    edits: [
      [
        '  if (!llhttpInstance) {\n    llhttpInstance = lazyllhttp()\n  }',
        '  if (!llhttpInstance) {\n' +
          "    globalThis[Symbol.for('oci-import.before-first-request')]?.()\n" +
          '    llhttpInstance = lazyllhttp()\n' +
          '  }',
      ],
    ],
  },
];
/** The files of UNDICI_EDITS the build edited: every one must be (checked after the build). */
const edited = new Set();
const undiciEdits = {
  name: 'undici-edits',
  setup(b) {
    b.onLoad({ filter: /undici[\\/]lib[\\/].*\.js$/ }, (args) => {
      const spec = UNDICI_EDITS.find((f) => args.path.endsWith(f.file));
      if (!spec) return undefined;
      let contents = readFileSync(args.path, 'utf8');
      for (const [from, to] of spec.edits) {
        if (contents.split(from).length !== 2) throw new Error(`undici-edits: ${spec.file} no longer has: ${from}`);
        contents = contents.replace(from, to);
      }
      edited.add(spec.file);
      return { contents, loader: 'js' };
    });
  },
};

const started = Date.now();
// V8 checks a code cache against the source's length, not its content: a cache of the previous bundle must not
// meet a new bundle of the same length.
const stale = existsSync('dist/cli') ? readdirSync('dist/cli').filter((name) => name.endsWith('.cache')) : [];
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
  define: { __OCI_IMPORT_VERSION__: JSON.stringify(JSON.parse(readFileSync('package.json', 'utf8')).version) },
  logLevel: 'warning',
  // The bundle is ASCII, so the launcher reads it as Latin-1 (see below): esbuild escapes every other character in
  // strings, template literals and regular expressions, and minifying drops comments except the packages' licence
  // notices, which go to their own file next to the bundle (undici's names an author with an "ä").
  legalComments: 'external',
  metafile: true,
  plugins: [undiciParts, lazyH2, undiciAssert, undiciEdits],
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
const unedited = UNDICI_EDITS.filter((f) => !edited.has(f.file));
if (unedited.length > 0) {
  process.stderr.write(`build-cli: undici's ${unedited[0].file} was not bundled, so not edited: see UNDICI_EDITS\n`);
  process.exit(1);
}
const moreOfAssert = Object.keys(output?.inputs ?? {}).filter(
  (path) => path.startsWith('node_modules/undici/') && /\bassert\.[A-Za-z]/.test(readFileSync(path, 'utf8')),
);
if (moreOfAssert.length > 0) {
  process.stderr.write(
    `build-cli: ${moreOfAssert[0]} uses more of node:assert than assert(value): the undici-assert plugin must give it\n`,
  );
  process.exit(1);
}
// bin/oci-import.js reads the bundle as Latin-1: one byte per character, no UTF-8 decoding, and V8 keeps the source
// as one byte per character instead of two (a single character beyond ASCII anywhere makes the whole 0.6 MB text
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
