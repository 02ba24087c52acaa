#!/usr/bin/env node
// The installed command: runs the bundled CLI (dist/cli/oci-import.cjs, built by `npm run build` through
// `prepare`) with V8's code cache, or the compiled modules when there is no bundle. The cache is one file per
// command next to the bundle, written after a run that had none (or whose cache V8 refused), and skipped
// silently where the folder is read-only: it only saves start-up time.
import { readFileSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bundle = join(root, 'dist', 'cli', 'oci-import.cjs');

function loadBundle() {
  let code;
  try {
    code = readFileSync(bundle, 'utf8');
  } catch {
    return undefined;
  }
  const command = /^[a-z]+$/.test(process.argv[2] ?? '') ? process.argv[2] : 'help';
  const cacheFile = `${bundle}.${command}.cache`;
  let cachedData;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    // first run of this command
  }
  const script = new Script(Module.wrap(code), { filename: bundle, cachedData });
  if (!cachedData || script.cachedDataRejected) {
    process.once('exit', () => {
      try {
        writeFileSync(cacheFile, script.createCachedData());
      } catch {
        // a read-only install: no cache, same behaviour
      }
    });
  }
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundle), module, bundle, dirname(bundle));
  return module.exports;
}

const { main } = loadBundle() ?? await import('../dist/lib/cli/main.js');
process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
