/**
 * The deployment package, rebuilt as Azure builds it: `npm run package` writes the zip azd and Core Tools
 * upload; it is unpacked with Info-ZIP `unzip` into an empty folder; there the platform's remote build runs
 * when azure.yaml asks for one (Oryx: `npm install`, which runs `prepare`, then `npm run build`, then
 * `npm run build:azure`, which prunes the development dependencies; nothing when remote build is off); then
 * the local host runs that folder (`--root`) on Azurite and an image is imported through it, checked with skopeo.
 * Nothing of this checkout's node_modules or dist/ is used by the app, and the app's node_modules holds only
 * what `dependencies` needs (checked against package-lock.json).
 *
 * `npm install` takes `--prefer-offline` (the npm cache that `npm ci` filled; the lockfile fixes every version
 * either way) and runs with the npm and Node.js this test runs on (CI runs it on Node.js 20 and 22); the
 * platform uses the npm of its Node image.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { remoteBuildOf } from '../../scripts/package/funcignore.js';
import {
  devDependencyCheck,
  footprint,
  formatMiB,
  oryxSteps,
  platformBuild,
  run,
  type Ran,
} from '../../scripts/package/platform-build.js';
import { PROJECT_ROOT, startHost, type HostProcess } from '../host/host-process.js';
import { startAzurite, type RunningAzurite } from '../support/azurite.js';
import { buildImage, type BuiltImage } from '../support/fixtures.js';
import { onPath, requireRegistryTools, startRegistry, type RunningRegistry } from '../support/registry.js';
import { manifestDigest, pushOciLayout } from '../support/skopeo.js';

const hasTools = requireRegistryTools();
const hasUnzip = onPath('unzip');
if (!hasUnzip && process.env.OCI_IMPORT_REQUIRE_REGISTRY === '1')
  throw new Error('unzip is required (.ci/run installs it)');

describe.skipIf(!hasTools || !hasUnzip)(
  'deployment package: built where Azure builds it, run by the local host',
  () => {
    let work: string;
    let app: string;
    let packaged: Omit<Ran, 'step'>;
    let zipPath: string;
    let remoteBuild: boolean | undefined;
    let build: Ran[] = [];
    const figures: { files?: number; bytes?: number; modulesBytes?: number; modulesFiles?: number } = {};
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
        build = await platformBuild(app);
        if (build.some((b) => b.code !== 0)) return;
      }
      [azurite, src, dst] = await Promise.all([startAzurite(), startRegistry(), startRegistry()]);
      image = await buildImage({
        dir: join(work, 'image'),
        seed: 'package-e2e',
        layersPerPlatform: 2,
        layerSize: 200_000,
      });
      await pushOciLayout(image.layoutDir, `${src.host}/team/app:1.0`);
      host = await startHost({
        args: ['--root', app, '--port', '0', '--no-azurite'],
        env: {
          AzureWebJobsStorage: azurite.connectionString,
          TARGET_REGISTRY: dst.host,
          INSECURE_REGISTRIES: `${src.host},${dst.host}`,
          ALLOWED_SOURCES: src.host,
          IMPORT_QUEUE: 'imports',
          STEP_BUDGET_SECONDS: '5',
          LOCAL_HOST_QUEUE_LEASE_SECONDS: '5',
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
      const m =
        /package: dist\/package\.zip: (\d+) files, (\d+) bytes \((\d+) bytes unpacked\); remote build (on|off)/.exec(
          packaged.output,
        );
      expect(m, packaged.output).not.toBeNull();
      expect(Number(m![2])).toBe((await stat(zipPath)).size);
      const listing = (await run('unzip', ['-Z1', zipPath], work)).output.trim().split('\n');
      expect(listing).toHaveLength(Number(m![1]));
      figures.files = Number(m![1]);
      figures.bytes = Number(m![2]);
      process.stdout.write(
        `[package] ${m![1]} files, ${m![2]} bytes zipped, ${m![3]} bytes unpacked, packaged in ${packaged.seconds.toFixed(1)} s\n`,
      );
    });

    it('holds what the platform builds from (sources, tsconfig, lockfile) and nothing built or installed', () => {
      expect(readdirSync(app).sort()).toEqual(
        [
          ...(remoteBuild === false ? [] : ['dist', 'node_modules']),
          'functions',
          'host.json',
          'lib',
          'package-lock.json',
          'package.json',
          'tsconfig.build.json',
          'tsconfig.json',
        ].sort(),
      );
      const listing = readFileSync(zipPath);
      expect(listing.includes(Buffer.from('node_modules/'))).toBe(false);
      expect(listing.includes(Buffer.from('dist/'))).toBe(false);
      expect(existsSync(join(app, 'local.settings.json'))).toBe(false);
    });

    it('builds where Azure builds it: npm install (prepare compiles), npm run build, npm run build:azure; nothing without remote build', () => {
      if (remoteBuild === false) {
        expect(build).toEqual([]);
      } else {
        const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
        expect(build.map((b) => b.step)).toEqual(oryxSteps(pkg).map((s) => s.step));
        expect(build.map((b) => b.step)).toEqual(['npm install', 'npm run build', 'npm run build:azure']);
        for (const ran of build) {
          expect(ran.code, `${ran.step}:\n${ran.output}`).toBe(0);
          process.stdout.write(`[package] ${ran.step}: ${ran.seconds.toFixed(1)} s\n`);
        }
        expect(build[0]!.output).toContain('tsc -p tsconfig.build.json'); // the `prepare` script ran
      }
      const main = (JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { main: string }).main;
      expect(main).toBe('dist/functions/*.js');
      // every function module of the sources, compiled
      const sources = readdirSync('functions')
        .filter((f) => f.endsWith('.ts'))
        .map((f) => f.replace(/\.ts$/, '.js'))
        .sort();
      expect(sources.length).toBeGreaterThanOrEqual(4);
      expect(
        readdirSync(join(app, 'dist', 'functions'))
          .filter((f) => f.endsWith('.js'))
          .sort(),
      ).toEqual(sources);
    });

    it('the built app carries no development dependency: node_modules holds exactly what `dependencies` needs', () => {
      const { devLeft, prodMissing } = devDependencyCheck(app);
      expect(devLeft, 'development packages left in node_modules').toEqual([]);
      expect(prodMissing, 'production packages missing from node_modules').toEqual([]);
      for (const tool of ['typescript', 'vitest', 'eslint', 'esbuild', 'azurite', 'tsx']) {
        expect(existsSync(join(app, 'node_modules', tool)), tool).toBe(false);
      }
      const modules = footprint(join(app, 'node_modules'));
      const dist = footprint(join(app, 'dist'));
      expect(modules.packages).toBeGreaterThan(10);
      figures.modulesBytes = modules.bytes;
      figures.modulesFiles = modules.files;
      const before = build.find((b) => b.step === 'npm run build')?.modules;
      if (before)
        process.stdout.write(
          `[package] node_modules before npm run build:azure: ${before.packages} packages, ${before.bytes} bytes (${formatMiB(before.bytes)}) in ${before.files} files\n`,
        );
      process.stdout.write(
        `[package] node_modules after the platform build: ${modules.packages} packages, ${modules.bytes} bytes ` +
          `(${formatMiB(modules.bytes)}) in ${modules.files} files; dist/: ${dist.bytes} bytes in ${dist.files} files\n`,
      );
    });

    it('the local host runs the built package (--root) and imports an image through it, as skopeo sees it', async () => {
      expect(host, 'the host did not start').toBeDefined();
      expect(host!.output()).toContain(app);
      const res = await fetch(`${host!.url}/api/imports`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ source: `${src.host}/team/app:1.0`, images: ['deployed/app:1.0'] }),
      });
      expect(res.status, await res.clone().text()).toBe(202);
      const { id } = (await res.json()) as { id: string };
      let status: { status: string; digest?: string; error?: unknown } = { status: 'queued' };
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline && status.status !== 'succeeded' && status.status !== 'failed') {
        await new Promise((r) => setTimeout(r, 250));
        status = (await (await fetch(`${host!.url}/api/imports/${id}`)).json()) as typeof status;
      }
      expect(status, host!.output().slice(-3000)).toMatchObject({ status: 'succeeded', digest: image.digest });
      expect(await manifestDigest(`${dst.host}/deployed/app:1.0`)).toBe(image.digest);
    }, 180_000);

    it("docs/deploy.md quotes figures written by `npm run package -- --build --docs`, close to this build's", () => {
      const doc = readFileSync(join(PROJECT_ROOT, 'docs', 'deploy.md'), 'utf8');
      const block = /<!-- package-figures -->\n([\s\S]*?)\n<!-- \/package-figures -->/.exec(doc)?.[1] ?? '';
      const num = (s: string | undefined) => Number((s ?? 'NaN').replace(/,/g, ''));
      const zipRow = /\| `dist\/package\.zip` \| ([\d,]+) files, ([\d,]+) bytes \(([\d,]+) bytes unpacked\) \|/.exec(
        block,
      );
      const runRow =
        /\| `node_modules` after `npm run build:azure` \(what runs\) \| (\d+) packages, ([\d,]+) bytes \([\d.]+ MiB\) in ([\d,]+) files \|/.exec(
          block,
        );
      expect(zipRow, `the figures block as the script writes it:\n${block}`).not.toBeNull();
      expect(runRow, block).not.toBeNull();
      // The block is rewritten by the script, never by hand; a drift of more than a quarter means it is stale.
      const near = (quoted: number, measured: number | undefined, what: string) => {
        expect(measured, what).toBeDefined();
        expect(
          Math.abs(quoted - measured!) / measured!,
          `${what}: docs say ${quoted}, this build ${measured}; run npm run package -- --build --docs docs/deploy.md`,
        ).toBeLessThan(0.25);
      };
      near(num(zipRow![1]), figures.files, 'package files');
      near(num(zipRow![2]), figures.bytes, 'package bytes');
      near(num(runRow![2]), figures.modulesBytes, 'node_modules bytes');
      near(num(runRow![3]), figures.modulesFiles, 'node_modules files');
      expect(doc).not.toMatch(/47 files|167,?576 bytes/);
    });
  },
);

describe.skipIf(!hasTools)('npm package: `files` ships what the installed CLI needs, and it runs', () => {
  let work: string;
  let src: RunningRegistry;
  let dst: RunningRegistry;
  let image: BuiltImage;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'oci-import-npm-pack-'));
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    image = await buildImage({ dir: join(work, 'image'), seed: 'npm-pack', layersPerPlatform: 1, layerSize: 50_000 });
    await pushOciLayout(image.layoutDir, `${src.host}/team/cli:1.0`);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('npm pack holds the command and its bundle (plus the function modules npm adds for `main`), no tests or caches', async () => {
    // --ignore-scripts: the checkout is built already (CI's npm ci ran prepare); packing must not rebuild it.
    const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], PROJECT_ROOT);
    expect(packed.code, packed.output).toBe(0);
    const [info] = JSON.parse(packed.output.slice(packed.output.indexOf('['))) as {
      filename: string;
      files: { path: string }[];
      size: number;
    }[];
    const paths = info!.files.map((f) => f.path).sort();
    const functions = readdirSync(join(PROJECT_ROOT, 'functions'))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => `dist/functions/${f.replace(/\.ts$/, '.js')}`);
    expect(paths).toEqual(
      [
        'README.md',
        'bin/oci-import.js',
        'bin/package.json',
        'dist/cli/oci-import.cjs',
        ...functions,
        'package.json',
      ].sort(),
    );
    process.stdout.write(`[package] npm pack: ${paths.length} files, ${info!.size} bytes\n`);

    // Installed as a user installs it; the command runs from the install, not from this checkout.
    const prefix = join(work, 'prefix');
    const installed = await run(
      'npm',
      ['install', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(work, info!.filename)],
      work,
    );
    expect(installed.code, installed.output).toBe(0);
    const bin = join(prefix, 'node_modules', '.bin', 'oci-import');
    const copied = await run(
      bin,
      [
        'import',
        '--source',
        `${src.host}/team/cli:1.0`,
        '--target',
        dst.host,
        '--image',
        'cli/app:1.0',
        '--insecure',
        src.host,
        '--insecure',
        dst.host,
      ],
      work,
    );
    expect(copied.code, copied.output).toBe(0);
    expect(await manifestDigest(`${dst.host}/cli/app:1.0`)).toBe(image.digest);
  }, 300_000);
});
