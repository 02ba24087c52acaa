/**
 * The installed command as users run it: `node bin/oci-import.js` in a child process, against REAL registries
 * (distribution 2.8; results checked with skopeo), a local managed-identity endpoint with an ACR-style registry
 * behind its token exchange, and a local stand-in for a deployed service. Exit codes 0, 1 and 2 come from the
 * process itself.
 *
 * Every command runs twice: the first run compiles the bundle and writes V8's code cache for that command, the
 * second starts from that cache — the path every later run of an installed command takes, and the one where
 * a dynamic `import()` (of @azure/identity, for managed identity) once failed. The command runs from a copy
 * of bin/ and the bundle in a temporary folder, so that its code cache is this file's alone: the second run
 * leaving the cache file untouched shows V8 accepted it (bin/oci-import.js writes a new one when V8 refuses it).
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAcr, startEntra, type RunningAcr, type RunningEntra } from '../support/azure.js';
import { PROJECT_ROOT, runBin, type CliRun } from '../support/cli.js';
import { buildImage, type BuiltImage } from '../support/fixtures.js';
import { requireRegistryTools, startRegistry, type RunningRegistry } from '../support/registry.js';
import { manifestDigest, pushOciLayout } from '../support/skopeo.js';
import { selfSignedCertificate } from '../support/tls.js';

const hasTools = requireRegistryTools();

/** A copy of the command as a package install lays it out: bin/, the bundle, package.json, node_modules. */
async function installCopy(dir: string): Promise<string> {
  await mkdir(join(dir, 'bin'), { recursive: true });
  await mkdir(join(dir, 'dist', 'cli'), { recursive: true });
  await copyFile(join(PROJECT_ROOT, 'bin', 'oci-import.js'), join(dir, 'bin', 'oci-import.js'));
  await copyFile(join(PROJECT_ROOT, 'bin', 'package.json'), join(dir, 'bin', 'package.json'));
  await copyFile(join(PROJECT_ROOT, 'dist', 'cli', 'oci-import.cjs'), join(dir, 'dist', 'cli', 'oci-import.cjs'));
  await copyFile(join(PROJECT_ROOT, 'package.json'), join(dir, 'package.json'));
  await symlink(join(PROJECT_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return join(dir, 'bin', 'oci-import.js');
}

/** A deployed service's API as the CLI sees it: one import that succeeds, its status, the list, a cancel. */
async function startService(): Promise<{ url: string; server: Server; seen: string[] }> {
  const id = '0f8fad5b-d9cb-469f-a165-70867728950e';
  const seen: string[] = [];
  const view = (status: string) => ({
    id,
    status,
    source: 'docker.io/library/nginx:1.27',
    targets: ['r.example/nginx:1.27'],
    createdAt: '2025-06-01T00:00:00Z',
    updatedAt: '2025-06-01T00:00:00Z',
    progress: { manifests: 1, blobsTotal: 1, blobsDone: 1, bytesTotal: 10, bytesCopied: 10 },
    ...(status === 'succeeded' ? { digest: `sha256:${'b'.repeat(64)}` } : {}),
  });
  const server = createServer((req: IncomingMessage, res) => {
    req.resume();
    req.on('end', () => {
      seen.push(`${req.method} ${req.url} key=${String(req.headers['x-functions-key'])}`);
      const reply = (status: number, body: unknown) =>
        res.writeHead(status, { 'content-type': 'application/json', 'retry-after': '0' }).end(JSON.stringify(body));
      if (req.method === 'POST' && req.url === '/api/imports')
        return reply(202, { id, status: 'queued', statusUrl: `http://${req.headers.host}/api/imports/${id}` });
      if (req.method === 'GET' && req.url === `/api/imports/${id}`) return reply(200, view('succeeded'));
      if (req.method === 'GET' && req.url?.startsWith('/api/imports?'))
        return reply(200, { value: [view('succeeded')] });
      if (req.method === 'POST' && req.url === `/api/imports/${id}/cancel`) return reply(200, view('canceled'));
      reply(404, { error: { code: 'NOT_FOUND', message: `no route ${req.method} ${req.url}` } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`, server, seen };
}

describe.skipIf(!hasTools)(
  'the installed command (node bin/oci-import.js), every command twice: compiled, then from its code cache',
  () => {
    let work: string;
    let bin: string;
    let basic: RunningRegistry;
    let plain: RunningRegistry;
    let entra: RunningEntra;
    let acr: RunningAcr;
    let service: Awaited<ReturnType<typeof startService>>;
    let image: BuiltImage;
    const creds = () => ({ username: basic.username!, password: basic.password! });
    const insecure = () => [basic.host, plain.host, acr.loginServer].join(',');

    /** The code cache files of one command in the copy (one per Node.js version and flags). */
    const cacheOf = async (command: string) => {
      const dir = join(work, 'install', 'dist', 'cli');
      const names = (await readdir(dir)).filter(
        (n) => n.startsWith(`oci-import.cjs.${command}.`) && n.endsWith('.cache'),
      );
      return Promise.all(names.map(async (n) => ({ name: n, ...(await stat(join(dir, n))) })));
    };

    /** Runs the command twice from no cache, checks both runs, and that the second ran from the first's cache. */
    async function twice(
      args: string[],
      env: Record<string, string>,
      check: (run: CliRun) => Promise<void> | void,
      stdin?: string,
    ): Promise<void> {
      const command = /^[a-z]+$/.test(args[0] ?? '') ? args[0]! : 'help';
      for (const old of await cacheOf(command)) await rm(join(work, 'install', 'dist', 'cli', old.name));
      let written: { name: string; mtimeMs: number; size: number } | undefined;
      for (const n of [1, 2]) {
        const run = await runBin(args, env, stdin, bin);
        await check(run);
        const cache = (await cacheOf(command)).map(({ name, mtimeMs, size }) => ({ name, mtimeMs, size }));
        expect(cache, `code cache of "${command}" after run ${n}`).toHaveLength(1);
        // V8 accepted the first run's cache: the second run did not write a new one
        if (written) expect(cache[0], `run 2 of "${command}" started from run 1's code cache`).toEqual(written);
        written = cache[0];
      }
    }

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'oci-import-installed-'));
      bin = await installCopy(join(work, 'install'));
      entra = await startEntra();
      [basic, plain, acr, service] = await Promise.all([
        startRegistry({ auth: 'htpasswd' }),
        startRegistry(),
        startAcr({ entra, roles: { [entra.systemObjectId]: ['pull', 'push'] } }),
        startService(),
      ]);
      image = await buildImage({
        dir: join(work, 'image'),
        seed: 'installed',
        platforms: [{ os: 'linux', architecture: 'amd64' }],
        layerSize: 40_000,
      });
      await pushOciLayout(image.layoutDir, `${basic.host}/team/app:1`, creds());
      await pushOciLayout(image.layoutDir, `${plain.host}/team/app:1`);
    });

    afterAll(async () => {
      await new Promise((resolve) => (service ? service.server.close(resolve) : resolve(undefined)));
      await Promise.all([basic?.stop(), plain?.stop(), acr?.stop(), entra?.stop()]);
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('--help: exit 0 with the usage; no command at all: exit 2', async () => {
      await twice(['--help'], {}, (run) => {
        expect(run.code).toBe(0);
        expect(run.stdout).toContain('oci-import import --source REF');
      });
      const bare = await runBin([], {}, undefined, bin);
      expect(bare.code).toBe(2);
      expect(bare.stderr).toContain('Usage:');
    });

    it('a wrong command line: exit 2 with the reason', async () => {
      await twice(['import', '--source', 'nginx:1.27'], {}, (run) => {
        expect(run.code).toBe(2);
        expect(run.stderr).toContain('--target is required');
      });
    });

    it('--password-stdin from a pipe into a basic-auth source: exit 0, the image in the target, no secret printed', async () => {
      await twice(
        [
          'import',
          '--source',
          `${basic.host}/team/app:1`,
          '--target',
          plain.host,
          '--image',
          'piped/app:1',
          '--username',
          basic.username!,
          '--password-stdin',
        ],
        { INSECURE_REGISTRIES: insecure() },
        async (run) => {
          expect(run.code, run.stderr).toBe(0);
          expect(run.stdout).toContain(`digest ${image.digest}`);
          expect(run.stderr).not.toContain('warning');
          expect(run.stdout + run.stderr).not.toContain(basic.password!);
          expect(await manifestDigest(`${plain.host}/piped/app:1`)).toBe(image.digest);
        },
        `${basic.password!}\n`,
      );
    });

    it('an import that fails: exit 1 with the code, and the wrong password never printed', async () => {
      await twice(
        [
          'import',
          '--source',
          `${basic.host}/team/app:1`,
          '--target',
          plain.host,
          '--username',
          basic.username!,
          '--password-stdin',
        ],
        { INSECURE_REGISTRIES: insecure() },
        (run) => {
          expect(run.code).toBe(1);
          expect(run.stderr).toMatch(/import failed \[[A-Z_]+\]/);
          expect(run.stderr).not.toContain('not-the-password');
        },
        'not-the-password\n',
      );
    });

    it('TARGET_AUTH=managed-identity: a token from the local managed-identity endpoint, exchanged at the registry, on both runs', async () => {
      const before = entra.requests.length;
      await twice(
        ['import', '--source', `${plain.host}/team/app:1`, '--target', acr.loginServer, '--image', 'mirror/app:1'],
        {
          INSECURE_REGISTRIES: insecure(),
          TARGET_AUTH: 'managed-identity',
          // the App Service managed-identity protocol on loopback: no credential chain reaches a real endpoint
          IDENTITY_ENDPOINT: entra.endpoint,
          IDENTITY_HEADER: entra.header,
        },
        async (run) => {
          expect(run.code, run.stderr).toBe(0);
          expect(run.stdout).toContain(`digest ${image.digest}`);
          expect(await manifestDigest(`${acr.loginServer}/mirror/app:1`, acr.admin)).toBe(image.digest);
        },
      );
      // one managed-identity token per run, for the registry's audience
      expect(entra.requests.slice(before).map((r) => `${r.status} ${r.query.resource}`)).toEqual([
        '200 https://containerregistry.azure.net',
        '200 https://containerregistry.azure.net',
      ]);
    });

    /** A run of the command, and Node.js's own modules it loaded (written at exit by a module preloaded through NODE_OPTIONS). */
    async function withModules(
      args: string[],
      env: Record<string, string>,
    ): Promise<{ run: CliRun; loaded: string[] }> {
      const probe = join(work, 'modules-probe.cjs');
      const list = join(work, 'modules.txt');
      await writeFile(
        probe,
        `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join('\\n')));`,
      );
      const run = await runBin(args, { ...env, NODE_OPTIONS: `--require ${probe}` }, undefined, bin);
      expect(run.code, run.stderr).toBe(0);
      return { run, loaded: (await readFile(list, 'utf8')).split('\n') };
    }

    it('an import between https registries verifies their certificates: trusted through NODE_EXTRA_CA_CERTS, else refused', async () => {
      // A TLS front (a self-signed certificate for 127.0.0.1) for the plain registry, as a load balancer in front of
      // a registry is: the command sends through node:https (scripts/build-cli.mjs), loaded by its first https request.
      const dir = join(work, 'tls');
      await mkdir(dir, { recursive: true });
      const { key, cert, certFile } = await selfSignedCertificate(dir);
      const [backHost, backPort] = plain.host.split(':') as [string, string];
      const front = createTlsServer({ key, cert }, (req, res) => {
        const back = httpRequest(
          {
            host: backHost,
            port: Number(backPort),
            method: req.method,
            path: req.url,
            headers: { ...req.headers, 'x-forwarded-proto': 'https' },
          },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        back.on('error', () => res.destroy());
        req.pipe(back);
      });
      await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
      const host = `127.0.0.1:${(front.address() as AddressInfo).port}`;
      try {
        const args = ['import', '--source', `${host}/team/app:1`, '--target', host, '--image', 'tls/app:1'];
        const refused = await runBin(args, {}, undefined, bin);
        expect(refused.code, refused.stderr).not.toBe(0);
        expect(refused.stderr).toMatch(/self[- ]signed/i);
        await twice(args, { NODE_EXTRA_CA_CERTS: certFile }, (run) => {
          expect(run.code, run.stderr).toBe(0);
          expect(run.stdout).toContain(image.digest);
        });
        expect(await manifestDigest(`${plain.host}/tls/app:1`)).toBe(image.digest);
        // node:https and TLS, loaded by the first https request, come before the launcher's flags too
        const after = await modulesAfterFlags(args, { NODE_EXTRA_CA_CERTS: certFile });
        expect(after, 'the launcher set its flags').not.toBeNull();
        expect(after).toEqual([]);
      } finally {
        front.closeAllConnections();
        await new Promise((resolve) => front.close(resolve));
      }
    });

    it('an import between plain-HTTP registries by address starts no module it does not use (start-up time)', async () => {
      const { loaded } = await withModules(
        ['import', '--source', `${plain.host}/team/app:1`, '--target', plain.host, '--image', 'lean/app:1'],
        { INSECURE_REGISTRIES: insecure() },
      );
      expect(loaded).toContain('NativeModule net'); // the copy did run
      // an ES module entry point (bin/package.json makes the command CommonJS), HTTP/2 (never negotiated), Node.js's own
      // copy of undici (fetch; the CLI sends through node:http: scripts/build-cli.mjs), the credential
      // helpers' child processes, the resolver (hosts given by address), TLS and node:https (plain HTTP: loaded by the
      // first https request), the promise API of the file system (the Docker config is read with node:fs), the
      // address block lists (the CLI does not guard its sources: lib/policy/sources.ts makes them on the first
      // address checked), node:assert, and node:module with the ES module loader it brings (the launcher wraps the
      // bundle itself)
      for (const unused of [
        'internal/modules/esm/translators',
        'http2',
        'internal/deps/undici/undici',
        'child_process',
        'dns/promises',
        'tls',
        'https',
        'fs/promises',
        'internal/blocklist',
        'assert',
        'internal/modules/esm/loader',
      ])
        expect(loaded, unused).not.toContain(`NativeModule ${unused}`);
    });

    it("a status from a deployed service loads neither Node.js's own undici (fetch) nor its TLS and HTTP/2 modules", async () => {
      const { run, loaded } = await withModules(
        ['status', '0f8fad5b-d9cb-469f-a165-70867728950e', '--endpoint', service.url, '--json'],
        { OCI_IMPORT_KEY: 'k3y' },
      );
      expect(JSON.parse(run.stdout)).toMatchObject({ status: 'succeeded' });
      expect(loaded).toContain('NativeModule net'); // the request did go out
      // the client sends through node:http (lib/cli/client.ts sendOnce), as the registry clients do: fetch and its
      // Headers would load Node.js's copy of undici and, through it, these
      for (const unused of ['internal/deps/undici/undici', 'tls', 'http2', 'zlib', 'worker_threads'])
        expect(loaded, unused).not.toContain(`NativeModule ${unused}`);
    });

    it("a run from the code cache optimizes nothing once it makes a request (the launcher's --no-opt); a run that writes the cache does", async () => {
      // A module preloaded through NODE_OPTIONS turns on V8's optimization trace at exit and runs a hot loop: TurboFan
      // takes it up where nothing turned optimization off (the run that writes the cache), never once the launcher
      // has set --no-opt (a run that starts from the cache, before its first request). The trace
      // goes to standard output.
      const probe = join(work, 'opt-probe.cjs');
      await writeFile(
        probe,
        `process.on('exit', () => {
  require('node:v8').setFlagsFromString('--trace-opt');
  const hot = (a) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * 2; return s; };
  const values = Array.from({ length: 1000 }, (_, i) => i);
  let total = 0;
  for (let i = 0; i < 20000; i++) total += hot(values);
  if (total < 0) process.stdout.write('unreachable');
});`,
      );
      const traced = { NODE_OPTIONS: `--require ${probe}` };
      // an import and a status (both through the bundle's HTTP client, which calls the hook of bin/oci-import.js first)
      const commands: [string, string[], Record<string, string>][] = [
        [
          'import',
          ['import', '--source', `${plain.host}/team/app:1`, '--target', plain.host, '--image', 'traced/app:1'],
          { INSECURE_REGISTRIES: insecure() },
        ],
        [
          'status',
          ['status', '0f8fad5b-d9cb-469f-a165-70867728950e', '--endpoint', service.url, '--json'],
          { OCI_IMPORT_KEY: 'k3y' },
        ],
      ];
      for (const [command, args, env] of commands) {
        const clear = async () => {
          for (const old of await cacheOf(command)) await rm(join(work, 'install', 'dist', 'cli', old.name));
        };
        await clear();
        const compiled = await runBin(args, { ...env, ...traced }, undefined, bin);
        expect(compiled.code, compiled.stderr).toBe(0);
        expect(compiled.stdout, command).toMatch(/TURBOFAN/);
        // that run wrote its cache after the probe changed a flag (V8 refuses such a cache): a plain run writes the one
        await clear();
        expect((await runBin(args, env, undefined, bin)).code).toBe(0);
        const cached = await runBin(args, { ...env, ...traced }, undefined, bin);
        expect(cached.code, cached.stderr).toBe(0);
        expect(cached.stdout, command).not.toMatch(/TURBOFAN/);
      }
      // a run that makes no request leaves the flags alone, from the cache too (its first run writes the cache)
      expect((await runBin(['--version'], {}, undefined, bin)).code).toBe(0);
      const version = await runBin(['--version'], traced, undefined, bin);
      expect(version.code).toBe(0);
      expect(version.stdout).toMatch(/TURBOFAN/);
    });

    /**
     * The Node.js modules a run loaded after the launcher first set --no-opt (V8 refuses Node.js's own code cache for a
     * module compiled after a flag changed), through a module preloaded with NODE_OPTIONS that wraps
     * v8.setFlagsFromString; null when the flag was never set.
     */
    async function modulesAfterFlags(args: string[], env: Record<string, string>): Promise<string[] | null> {
      const probe = join(work, 'flags-probe.cjs');
      const out = join(work, 'flags-probe.json');
      await writeFile(
        probe,
        `const v8 = require('node:v8');
const set = v8.setFlagsFromString;
let at;
v8.setFlagsFromString = function (flags) {
  if (at === undefined && /no-opt/.test(flags)) at = process.moduleLoadList.length;
  return set.call(this, flags);
};
process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(
  at === undefined ? null : process.moduleLoadList.slice(at).filter((m) => m.startsWith('NativeModule ')))));`,
      );
      expect((await runBin(args, env, undefined, bin)).code).toBe(0); // the command's code cache, if not there yet
      const run = await runBin(args, { ...env, NODE_OPTIONS: `--require ${probe}` }, undefined, bin);
      expect(run.code, run.stderr).toBe(0);
      return JSON.parse(await readFile(out, 'utf8')) as string[] | null;
    }

    it("an import loads every Node.js module it needs before the launcher's V8 flags change (V8 refuses Node.js's own code cache after)", async () => {
      const after = await modulesAfterFlags(
        ['import', '--source', `${plain.host}/team/app:1`, '--target', plain.host, '--image', 'flags/app:1'],
        { INSECURE_REGISTRIES: insecure() },
      );
      expect(after, 'the launcher set its flags').not.toBeNull();
      // set when the launcher loaded the bundle, the flags came before the argument parser (node:util's parseArgs)
      expect(after).toEqual([]);
    });

    it("a first run that only printed help or failed leaves a partial cache; the command's first complete run replaces it", async () => {
      const importCache = async () =>
        (await cacheOf('import')).map(({ name, mtimeMs, size }) => ({ name, mtimeMs, size }));
      for (const old of await cacheOf('import')) await rm(join(work, 'install', 'dist', 'cli', old.name));
      const help = await runBin(['import', '--help'], {}, undefined, bin);
      expect(help.code).toBe(0);
      const [partial, ...more] = await importCache();
      expect(more).toEqual([]);
      expect(partial!.name).toMatch(/\.partial\.cache$/);
      // a failed run starts from it and leaves it as it is
      const failed = await runBin(['import', '--source', 'nginx:1.27'], {}, undefined, bin);
      expect(failed.code).toBe(2);
      expect(await importCache()).toEqual([partial]);
      const args = ['import', '--source', `${plain.host}/team/app:1`, '--target', plain.host, '--image', 'warm/app:1'];
      const first = await runBin(args, { INSECURE_REGISTRIES: insecure() }, undefined, bin);
      expect(first.code, first.stderr).toBe(0);
      const [full, ...others] = await importCache();
      expect(others).toEqual([]);
      expect(full!.name).not.toMatch(/partial/);
      // holding what an import compiles, far more than the help text did
      expect(full!.size).toBeGreaterThan(partial!.size * 1.3);
      const again = await runBin(
        ['import', '--source', `${plain.host}/team/app:1`, '--target', plain.host, '--image', 'warm/app:2'],
        { INSECURE_REGISTRIES: insecure() },
        undefined,
        bin,
      );
      expect(again.code, again.stderr).toBe(0);
      expect(await importCache()).toEqual([full]);
    });

    it('sync --rules: exit 0, the selected tag mirrored', async () => {
      const rules = join(work, 'rules.json');
      await writeFile(
        rules,
        JSON.stringify({
          rules: [{ source: `${plain.host}/team/app`, target: 'synced/app', tags: { include: ['^1$'] } }],
        }),
      );
      await twice(
        ['sync', '--rules', rules, '--target', plain.host],
        { INSECURE_REGISTRIES: insecure() },
        async (run) => {
          expect(run.code, run.stderr + run.stdout).toBe(0);
          expect(await manifestDigest(`${plain.host}/synced/app:1`)).toBe(image.digest);
        },
      );
    });

    it('--endpoint: import, status, list and cancel against a deployed service, with the key', async () => {
      const env = { OCI_IMPORT_KEY: 'k3y' };
      const url = service.url;
      await twice(['import', '--endpoint', url, '--source', 'docker.io/library/nginx:1.27'], env, (run) => {
        expect(run.code, run.stderr).toBe(0);
        expect(run.stdout).toContain(`digest sha256:${'b'.repeat(64)}`);
      });
      await twice(['status', '0f8fad5b-d9cb-469f-a165-70867728950e', '--endpoint', url, '--json'], env, (run) => {
        expect(run.code, run.stderr).toBe(0);
        expect(JSON.parse(run.stdout)).toMatchObject({ status: 'succeeded' });
      });
      await twice(['list', '--endpoint', url, '--json'], env, (run) => {
        expect(run.code, run.stderr).toBe(0);
        expect((JSON.parse(run.stdout) as { value: unknown[] }).value).toHaveLength(1);
      });
      await twice(['cancel', '0f8fad5b-d9cb-469f-a165-70867728950e', '--endpoint', url], env, (run) => {
        expect(run.code, run.stderr).toBe(0);
      });
      expect(service.seen.length).toBeGreaterThanOrEqual(8);
      expect(service.seen.every((s) => s.endsWith('key=k3y'))).toBe(true);
    });
  },
);
