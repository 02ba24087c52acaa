#!/usr/bin/env node
// The installed command: runs the bundled CLI (dist/cli/oci-import.cjs, built by `npm run build` through
// `prepare`) with V8's code cache, or the compiled modules when there is no bundle. The cache is one file per
// command next to the bundle, written after a run that had none (or whose cache V8 refused), and skipped
// silently where the folder is read-only: it only saves start-up time. V8 refuses a cache made under other
// flags, so the file name carries Node.js's version and flags (a profiling run keeps its own).
// A cache holds the code its run compiled: a run that only printed help or failed early compiles little, and every
// later run would compile the rest anew. Such a run's cache is partial (`.partial.cache`), and the first run that
// does the command's work (exit 0, no --help) replaces it with its own.
//
// A CommonJS script (bin/package.json), where the package is ES modules: Node.js starts an ES module entry point
// through its ESM loader, about 5 ms more of every run's start-up on this path (measured: the same six requires
// as an .mjs and a .cjs file, 34.5 ms against 29.4 ms median of 25 runs each).
'use strict';
const { createHash } = require('node:crypto');
const { readFileSync, rmSync, writeFileSync } = require('node:fs');
const { dirname, join } = require('node:path');
const { setFlagsFromString } = require('node:v8');
const { Script } = require('node:vm');

const root = join(__dirname, '..');
const bundle = join(root, 'dist', 'cli', 'oci-import.cjs');

/** The bundle's exports, and whether its code came from the cache; undefined without a bundle. */
function loadBundle() {
  let code;
  try {
    // ASCII (scripts/build-cli.mjs checks it), read as Latin-1: no UTF-8 decoding, and a string of one byte per
    // character. Against UTF-8 (the bundle then held one character beyond ASCII, so V8 kept all of it two bytes a
    // character), measured 2026-12-06: the read 1.8-2.5 ms -> 1.3-1.6 ms (4 runs each, in a bare process).
    code = readFileSync(bundle, 'latin1');
  } catch {
    return undefined;
  }
  const command = /^[a-z]+$/.test(process.argv[2] ?? '') ? process.argv[2] : 'help';
  const runtime = createHash('sha256')
    .update(`${process.version} ${process.execArgv.join(' ')}`)
    .digest('hex')
    .slice(0, 12);
  const full = `${bundle}.${command}.${runtime}.cache`;
  const partial = `${bundle}.${command}.${runtime}.partial.cache`;
  let cachedData;
  let from;
  for (const file of [full, partial]) {
    try {
      cachedData = readFileSync(file);
      from = file;
      break;
    } catch {
      // not written yet
    }
  }
  // A vm.Script has no module loader for `import()`: the bundle requires its one lazy external instead
  // (scripts/build-cli.mjs; Node.js's importModuleDynamically option is lost when V8 takes the cached code).
  // CommonJS's own wrapper (node:module's wrap(), without loading that module and the ES module loader it brings)
  const wrapped = `(function (exports, require, module, __filename, __dirname) { ${code}\n});`;
  const script = new Script(wrapped, { filename: bundle, cachedData });
  const cached = cachedData !== undefined && !script.cachedDataRejected;
  // a run from a partial cache may be the one that replaces it: it runs as a run that writes the cache does
  const final = cached && from === full;
  if (!final) {
    const helpAsked = process.argv.includes('--help') || process.argv.includes('-h');
    process.once('exit', (code) => {
      const complete = code === 0 && !helpAsked;
      if (cached && !complete) return;
      try {
        writeFileSync(complete ? full : partial, script.createCachedData());
        if (complete) rmSync(partial, { force: true });
      } catch {
        // a read-only install: no cache, same behaviour
      }
    });
  }
  const module = { exports: {} };
  // The bundle requires Node.js's modules and two packages, which resolve the same from bin/ as from dist/cli/
  // (node_modules of the package root): this script's own require, without node:module's createRequire.
  script.runInThisContext()(module.exports, require, module, bundle, dirname(bundle));
  return { exports: module.exports, cached: final };
}

const loaded = loadBundle();
// A V8 flag, set before the command's first request (a hook the bundle's HTTP client calls before it sends: the
// `undici` of scripts/build-cli.mjs), and not on a run that writes the cache (V8 checks a cache against the flags it
// was made under). Not earlier: V8 also refuses Node.js's own code cache for a module compiled after a flag changed,
// and a command loads some when it starts to work (the argument parser; TLS, when it first connects to an https
// registry). node:tls and the argument parser loaded after the flags: 3.9-5.1 ms of CPU, before them 1.2-2.0 ms
// (measured 2026-12-06, 4 runs each). A command that sends no request (help, a usage error) leaves it alone.
// `--no-opt`: no JavaScript function is recompiled optimized (TurboFan) from then on. The copy's bytes are hashed and
// moved by Node.js's native code; what runs in JavaScript between them does not need the optimizing compiler, whose
// compile jobs and code cost a copy memory and CPU. Sending through node:http, 3 runs each on loopback (2026-12-06):
// the 300 MiB layer 81 MB of peak RSS and 0.79 s of CPU with the flag, 87 MB and 0.85 s without; the 3-platform index
// 89 MB and 0.88 s with it, 93 MB and 0.96 s without (docs/benchmarks.md).
const BEFORE_FIRST_REQUEST = Symbol.for('oci-import.before-first-request');
if (loaded?.cached) {
  globalThis[BEFORE_FIRST_REQUEST] = () => {
    delete globalThis[BEFORE_FIRST_REQUEST];
    setFlagsFromString('--no-opt');
  };
}
const io = { stdout: process.stdout, stderr: process.stderr, env: process.env };
(loaded ? Promise.resolve(loaded.exports) : import('../dist/lib/cli/main.js'))
  .then(({ main }) => main(process.argv.slice(2), io))
  .then(async (code) => {
    process.exitCode = code;
    // The command is done once its output is out: process.exit() then skips tearing down the JavaScript heap and
    // the event loop that a natural exit does (about 4 ms of a small image's copy, against 102 ms; interleaved runs,
    // medians of 21). An empty write's callback comes after every write before it is flushed, or has failed.
    await Promise.all([process.stdout, process.stderr].map((s) => new Promise((resolve) => s.write('', resolve))));
    process.exit();
  });
