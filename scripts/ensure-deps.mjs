#!/usr/bin/env node
// `npm start` and `npm test` run this first (prestart, pretest): on a fresh clone, or after a pull that changed
// package-lock.json, it installs the locked dependencies (`npm ci`, which also builds through `prepare`), so the
// README's two commands are the whole set-up. npm writes node_modules/.package-lock.json on every install: when it
// is missing or older than package-lock.json, node_modules does not match the lock file.
// Then, when dist/ is older than the code it is built from (an edit since the last build), it builds again: the
// tests run the built command and host, and would otherwise test yesterday's code.
// Plain Node with no dependencies: it runs before there are any.
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { staleBuild } from './build-freshness.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const mtime = (path) => {
  try {
    return statSync(join(root, path)).mtimeMs;
  } catch {
    return undefined;
  }
};

/** Runs `npm <args>` in the project, or exits with its status and `failed` when it fails. */
function npm(args, failed) {
  // npm sets npm_execpath for scripts it runs: the same npm, whatever PATH says.
  const execPath = process.env.npm_execpath;
  const result = execPath
    ? spawnSync(process.execPath, [execPath, ...args], { cwd: root, stdio: 'inherit' })
    : spawnSync('npm', args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (result.status !== 0) {
    process.stderr.write(`oci-import: ${failed} (see above); fix that, then run the command again\n`);
    process.exit(result.status ?? 1);
  }
}

const installed = mtime('node_modules/.package-lock.json');
const locked = mtime('package-lock.json');
if (installed === undefined || locked === undefined || installed < locked) {
  process.stderr.write(
    `oci-import: ${installed === undefined ? 'no dependencies installed yet' : 'package-lock.json changed since the last install'}: running npm ci\n`,
  );
  npm(['ci', '--no-audit', '--no-fund'], 'npm ci failed');
}

const stale = staleBuild(root);
if (stale) {
  process.stderr.write(`oci-import: ${stale}: running npm run build\n`);
  npm(['run', 'build'], 'the build failed');
}
