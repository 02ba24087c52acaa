/**
 * On a fresh clone `npm start` alone brings the service up: the files of this tree (what `git clone` gives:
 * tracked and new files, nothing ignored, no node_modules, no dist) in an empty folder, `npm start` there —
 * it installs the locked dependencies itself (scripts/ensure-deps.mjs as `prestart`), builds, starts the
 * host; without TARGET_REGISTRY it says at start-up what to set, and a POST is refused with
 * 503 TARGET_REGISTRY_NOT_SET. Run once more, it installs nothing. (Storage: a test Azurite, so the default
 * ports stay free for other runs; `npm start` starting Azurite itself is test/host/azurite-autostart.test.ts.)
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../host/host-process.js';
import { startAzurite, type RunningAzurite } from '../support/azurite.js';
import { onPath } from '../support/registry.js';

const hasGit = onPath('git') && existsSync(join(PROJECT_ROOT, '.git'));
// Where the tools are required (OCI_IMPORT_REQUIRE_REGISTRY=1, as CI sets it) a missing git is a failure, not a skip.
if (!hasGit && process.env.OCI_IMPORT_REQUIRE_REGISTRY === '1') {
  throw new Error(
    'OCI_IMPORT_REQUIRE_REGISTRY=1 but git or the .git folder is missing: this test copies what a fresh clone holds',
  );
}

interface Started {
  child: ChildProcess;
  output: () => string;
  url: string;
}

async function npmStart(dir: string, env: Record<string, string>): Promise<Started> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k, v]) => v !== undefined && !/^(npm_|TARGET_|LOCAL_HOST_|OCI_IMPORT_)/i.test(k),
    ),
  ) as Record<string, string>;
  const child = spawn('npm', ['start'], {
    cwd: dir,
    env: { ...clean, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout!.on('data', (b: Buffer) => {
    output += b.toString();
  });
  child.stderr!.on('data', (b: Buffer) => {
    output += b.toString();
  });
  for (const deadline = Date.now() + 240_000; ;) {
    const m = /Host listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
    if (m) return { child, output: () => output, url: m[1]! };
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`npm start did not bring the host up (exit ${child.exitCode}):\n${output.slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stop(s: Started | undefined): Promise<void> {
  if (!s || s.child.exitCode !== null) return;
  const exited = new Promise((r) => s.child.once('exit', r));
  process.kill(-s.child.pid!, 'SIGTERM'); // npm, node, the worker: the whole group
  const timer = setTimeout(() => process.kill(-s.child.pid!, 'SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

describe.skipIf(!hasGit)('a fresh clone', () => {
  let dir: string;
  let azurite: RunningAzurite;
  let started: Started | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oci-import-clone-'));
    const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
    })
      .split('\0')
      .filter(Boolean);
    for (const f of files) {
      if (!existsSync(join(PROJECT_ROOT, f))) continue; // deleted in the work tree
      await mkdir(dirname(join(dir, f)), { recursive: true });
      await cp(join(PROJECT_ROOT, f), join(dir, f));
    }
    azurite = await startAzurite();
  }, 120_000);

  afterAll(async () => {
    await stop(started);
    await azurite?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const env = () => ({ AzureWebJobsStorage: azurite.connectionString, FUNCTIONS_HTTP_PORT: '0' });

  it('npm start installs, builds and serves; without TARGET_REGISTRY it says what to set and refuses POSTs with 503 TARGET_REGISTRY_NOT_SET', async () => {
    expect(existsSync(join(dir, 'node_modules'))).toBe(false);
    started = await npmStart(dir, env());
    expect(started.output()).toContain('no dependencies installed yet: running npm ci');
    expect(existsSync(join(dir, 'node_modules', '.package-lock.json'))).toBe(true);
    await new Promise((r) => setTimeout(r, 500)); // the worker's start-up lines
    expect(started.output()).toContain('this deployment has no target registry: set the setting TARGET_REGISTRY');
    const res = await fetch(`${started.url}/api/imports`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"source":"docker.io/library/nginx:1.27"}',
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('x-ms-error-code')).toBe('TARGET_REGISTRY_NOT_SET');
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain(
      'set the setting TARGET_REGISTRY',
    );
    expect((await fetch(`${started.url}/api/openapi.json`)).status).toBe(200);
    await stop(started);

    started = await npmStart(dir, env());
    expect(started.output()).not.toContain('running npm ci');
  }, 480_000);
});
