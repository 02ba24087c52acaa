/**
 * The deployment package, rebuilt as Azure builds it: `npm run package` writes the zip azd and Core Tools
 * upload; it is unpacked with Info-ZIP `unzip` into an empty folder; there the platform's remote build runs
 * when azure.yaml asks for one (Oryx: `npm install`, which runs `prepare`, then `npm run build`; nothing when
 * remote build is off); then the local host runs that folder (`--root`) on Azurite and an image is imported
 * through it, checked with skopeo. Nothing of this checkout's node_modules or dist/ is used by the app.
 *
 * `npm install` takes `--prefer-offline` (the npm cache that `npm ci` filled; the lockfile fixes every version
 * either way) and runs with this machine's npm; the platform uses the npm of its Node image.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { remoteBuildOf } from '../../scripts/package/funcignore.js';
import { PROJECT_ROOT, startHost, type HostProcess } from '../host/host-process.js';
import { startAzurite, type RunningAzurite } from '../support/azurite.js';
import { buildImage, type BuiltImage } from '../support/fixtures.js';
import { onPath, requireRegistryTools, startRegistry, type RunningRegistry } from '../support/registry.js';
import { manifestDigest, pushOciLayout } from '../support/skopeo.js';

const hasTools = requireRegistryTools();
const hasUnzip = onPath('unzip');
if (!hasUnzip && process.env.OCI_IMPORT_REQUIRE_REGISTRY === '1') throw new Error('unzip is required (.ci/run installs it)');

interface Ran {
  code: number | null;
  output: string;
  seconds: number;
}

/** Runs a command to its end; the environment is this one without npm's and vitest's own variables. */
function run(cmd: string, args: string[], cwd: string, timeoutMs = 600_000): Promise<Ran> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(npm_|VITEST|NODE_ENV$|NODE_OPTIONS$)/i.test(k)) env[k] = v;
  }
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => { output += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { output += b.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, seconds: (Date.now() - started) / 1000 });
    });
  });
}

describe.skipIf(!hasTools || !hasUnzip)('deployment package: built where Azure builds it, run by the local host', () => {
  let work: string;
  let app: string;
  let packaged: Ran;
  let zipPath: string;
  let remoteBuild: boolean | undefined;
  const build: { step: string; ran: Ran }[] = [];
  let azurite: RunningAzurite;
  let src: RunningRegistry;
  let dst: RunningRegistry;
  let image: BuiltImage;
  let host: HostProcess | undefined;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'oci-import-package-'));
    app = join(work, 'app');
    packaged = await run('npm', ['run', 'package'], PROJECT_ROOT);
    zipPath = join(PROJECT_ROOT, 'dist', 'package.zip');
    if (packaged.code !== 0) return;
    const unzipped = await run('unzip', ['-q', zipPath, '-d', app], work);
    if (unzipped.code !== 0) throw new Error(`unzip failed:\n${unzipped.output}`);
    remoteBuild = remoteBuildOf(readFileSync(join(PROJECT_ROOT, 'azure.yaml'), 'utf8'));
    // azd's default for JS/TS with node_modules excluded is remote build too.
    if (remoteBuild !== false) {
      for (const [step, args] of [['npm install', ['install', '--prefer-offline', '--no-audit', '--no-fund']], ['npm run build', ['run', 'build']]] as const) {
        const ran = await run('npm', [...args], app);
        build.push({ step, ran });
        if (ran.code !== 0) return;
      }
    }
    [azurite, src, dst] = await Promise.all([startAzurite(), startRegistry(), startRegistry()]);
    image = await buildImage({ dir: join(work, 'image'), seed: 'package-e2e', layersPerPlatform: 2, layerSize: 200_000 });
    await pushOciLayout(image.layoutDir, `${src.host}/team/app:1.0`);
    host = await startHost({
      args: ['--root', app, '--port', '0', '--no-azurite'],
      env: {
        AzureWebJobsStorage: azurite.connectionString, TARGET_REGISTRY: dst.host, INSECURE_REGISTRIES: `${src.host},${dst.host}`,
        ALLOWED_SOURCES: src.host, IMPORT_QUEUE: 'imports', STEP_BUDGET_SECONDS: '5', LOCAL_HOST_QUEUE_LEASE_SECONDS: '5',
        // given, as in Azure: without it the host would keep a key of its own in the package's folder (.local-host/)
        MESSAGE_KEY: Buffer.alloc(32, 8).toString('base64'),
      },
      readyTimeoutMs: 60_000,
    });
  }, 900_000);

  afterAll(async () => {
    await host?.stop('SIGTERM');
    await Promise.all([azurite?.stop(), src?.stop(), dst?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('npm run package writes dist/package.zip and prints its size and file count', async () => {
    expect(packaged.code, packaged.output).toBe(0);
    const m = /package: dist\/package\.zip: (\d+) files, (\d+) bytes \((\d+) bytes unpacked\); remote build (on|off)/.exec(packaged.output);
    expect(m, packaged.output).not.toBeNull();
    expect(Number(m![2])).toBe((await stat(zipPath)).size);
    const listing = (await run('unzip', ['-Z1', zipPath], work)).output.trim().split('\n');
    expect(listing).toHaveLength(Number(m![1]));
    process.stdout.write(`[package] ${m![1]} files, ${m![2]} bytes zipped, ${m![3]} bytes unpacked, packaged in ${packaged.seconds.toFixed(1)} s\n`);
  });

  it('holds what the platform builds from (sources, tsconfig, lockfile) and nothing built or installed', () => {
    expect(readdirSync(app).sort()).toEqual(
      [...(remoteBuild === false ? [] : ['dist', 'node_modules']), 'functions', 'host.json', 'lib', 'package-lock.json', 'package.json', 'tsconfig.build.json', 'tsconfig.json'].sort());
    const listing = readFileSync(zipPath);
    expect(listing.includes(Buffer.from('node_modules/'))).toBe(false);
    expect(listing.includes(Buffer.from('dist/'))).toBe(false);
    expect(existsSync(join(app, 'local.settings.json'))).toBe(false);
  });

  it('builds where Azure builds it: npm install (prepare compiles), then npm run build; nothing without remote build', () => {
    if (remoteBuild === false) {
      expect(build).toEqual([]);
    } else {
      expect(build.map((b) => b.step)).toEqual(['npm install', 'npm run build']);
      for (const { step, ran } of build) {
        expect(ran.code, `${step}:\n${ran.output}`).toBe(0);
        process.stdout.write(`[package] ${step}: ${ran.seconds.toFixed(1)} s\n`);
      }
      expect(build[0]!.ran.output).toContain('tsc -p tsconfig.build.json'); // the `prepare` script ran
    }
    const main = (JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { main: string }).main;
    expect(main).toBe('dist/functions/*.js');
    // every function module of the sources, compiled
    const sources = readdirSync('functions').filter((f) => f.endsWith('.ts')).map((f) => f.replace(/\.ts$/, '.js')).sort();
    expect(sources.length).toBeGreaterThanOrEqual(4);
    expect(readdirSync(join(app, 'dist', 'functions')).filter((f) => f.endsWith('.js')).sort()).toEqual(sources);
  });

  it('the local host runs the built package (--root) and imports an image through it, as skopeo sees it', async () => {
    expect(host, 'the host did not start').toBeDefined();
    expect(host!.output()).toContain(app);
    const res = await fetch(`${host!.url}/api/imports`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ source: `${src.host}/team/app:1.0`, images: ['deployed/app:1.0'] }),
    });
    expect(res.status, await res.clone().text()).toBe(202);
    const { id } = await res.json() as { id: string };
    let status: { status: string; digest?: string; error?: unknown } = { status: 'queued' };
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline && status.status !== 'succeeded' && status.status !== 'failed') {
      await new Promise((r) => setTimeout(r, 250));
      status = await (await fetch(`${host!.url}/api/imports/${id}`)).json() as typeof status;
    }
    expect(status, host!.output().slice(-3000)).toMatchObject({ status: 'succeeded', digest: image.digest });
    expect(await manifestDigest(`${dst.host}/deployed/app:1.0`)).toBe(image.digest);
  }, 180_000);
});
