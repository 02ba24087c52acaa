/**
 * The CLI as its neighbours behave (issue 25), through the installed command (`node bin/oci-import.js` in a child
 * process, the bundle as users run it): OCI_IMPORT_ENDPOINT for import, `status ID --wait`, `--json` errors,
 * `sync`'s progress line on a terminal (a real pseudo-terminal, from util-linux `script`) and its silence off
 * one, `--version`, the `--insecure` hint from a real plain-HTTP registry, and per-command `--help`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, PROJECT_ROOT, runBin } from '../support/cli.js';
import { buildImage, type BuiltImage } from '../support/fixtures.js';
import { requireRegistryTools, startRegistry, type RunningRegistry } from '../support/registry.js';
import { manifestDigest, pushOciLayout } from '../support/skopeo.js';

const hasTools = requireRegistryTools();
const hasScript = spawnSync('script', ['--version']).status === 0;

const OK_ID = '0f8fad5b-d9cb-469f-a165-70867728950e';
const FAIL_ID = '1b4e28ba-2fa1-41d2-883f-0016d3cca427';
const WAIT_ID = '7c9e6679-7425-40de-944b-e07fc1f90ae7';

/** A deployed service's API: OK_ID and WAIT_ID go queued → running → succeeded over three GETs; FAIL_ID failed; others 404. */
async function startService(): Promise<{ url: string; server: Server; seen: string[] }> {
  const seen: string[] = [];
  const gets = new Map<string, number>();
  const view = (id: string, status: string) => ({
    id,
    status,
    source: 'docker.io/library/nginx:1.27',
    targets: ['r.example/nginx:1.27'],
    createdAt: '2025-06-01T00:00:00Z',
    updatedAt: '2025-06-01T00:00:00Z',
    progress: {
      manifests: 1,
      blobsTotal: 2,
      blobsDone: status === 'succeeded' ? 2 : status === 'running' ? 1 : 0,
      bytesTotal: 10,
      bytesCopied: status === 'succeeded' ? 10 : 0,
    },
    ...(status === 'succeeded' ? { digest: `sha256:${'b'.repeat(64)}` } : {}),
    ...(status === 'failed' ? { error: { code: 'MANIFEST_UNKNOWN', message: 'no such tag' } } : {}),
  });
  const server = createServer((req: IncomingMessage, res) => {
    req.resume();
    req.on('end', () => {
      seen.push(`${req.method} ${req.url}`);
      const reply = (status: number, body: unknown) =>
        res.writeHead(status, { 'content-type': 'application/json', 'retry-after': '0' }).end(JSON.stringify(body));
      if (req.method === 'POST' && req.url === '/api/imports')
        return reply(202, {
          id: OK_ID,
          status: 'queued',
          statusUrl: `http://${req.headers.host}/api/imports/${OK_ID}`,
        });
      const id = [OK_ID, WAIT_ID].find((i) => req.method === 'GET' && req.url === `/api/imports/${i}`);
      if (id) {
        const n = (gets.get(id) ?? 0) + 1;
        gets.set(id, n);
        return reply(200, view(id, ['queued', 'running'][n - 1] ?? 'succeeded'));
      }
      if (req.method === 'GET' && req.url === `/api/imports/${FAIL_ID}`) return reply(200, view(FAIL_ID, 'failed'));
      // the service's code for an unknown import (lib/error-codes.ts)
      reply(404, { error: { code: 'NOT_FOUND', message: `no import ${req.url}` } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`, server, seen };
}

/** The installed command on a pseudo-terminal (util-linux `script`): what a user's terminal receives. */
async function runOnTerminal(args: string[], env: Record<string, string>): Promise<{ code: number; output: string }> {
  const command = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = spawn('script', ['-qefc', command, '/dev/null'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, TERM: 'xterm', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
  const code = await new Promise<number>((resolve) => child.on('close', (status) => resolve(status ?? -1)));
  return { code, output };
}

describe('the installed command: version, per-command help, OCI_IMPORT_ENDPOINT, status --wait, --json errors', () => {
  let service: Awaited<ReturnType<typeof startService>>;
  beforeAll(async () => {
    service = await startService();
  });
  afterAll(async () => {
    await new Promise((resolve) => service.server.close(resolve));
  });

  it('--version: the package.json version, exit 0', async () => {
    const pkg = JSON.parse(await readFile(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string };
    const run = await runBin(['--version']);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`oci-import ${pkg.version}\n`);
  });

  it("COMMAND --help: that command's usage and options only, exit 0", async () => {
    const importHelp = await runBin(['import', '--help']);
    expect(importHelp.code).toBe(0);
    expect(importHelp.stdout).toContain('--source REF');
    expect(importHelp.stdout).not.toContain('--rules FILE');
    const syncHelp = await runBin(['sync', '-h']);
    expect(syncHelp.code).toBe(0);
    expect(syncHelp.stdout).toContain('--rules FILE');
    expect(syncHelp.stdout).toContain('--quiet');
    expect(syncHelp.stdout).not.toContain('--source REF');
    const statusHelp = await runBin(['status', '--help']);
    expect(statusHelp.code).toBe(0);
    expect(statusHelp.stdout).toContain('--wait');
    expect(statusHelp.stdout).not.toContain('--source REF');
    const full = await runBin(['--help']);
    expect(full.stdout).toContain('--rules FILE');
    expect(full.stdout).toContain('--source REF');
  });

  it('OCI_IMPORT_ENDPOINT: import goes to the service without --endpoint, and local-only options are refused', async () => {
    const before = service.seen.length;
    const run = await runBin(['import', '--source', 'docker.io/library/nginx:1.27'], {
      OCI_IMPORT_ENDPOINT: service.url,
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`digest sha256:${'b'.repeat(64)}`);
    expect(service.seen.slice(before)[0]).toBe('POST /api/imports');
    const refused = await runBin(['import', '--source', 'docker.io/library/nginx:1.27', '--target', 'r.example'], {
      OCI_IMPORT_ENDPOINT: service.url,
    });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('OCI_IMPORT_ENDPOINT');
  });

  it('status ID --wait: follows to the end with the progress line; 0 when it succeeded, 1 with the code when it failed', async () => {
    const ok = await runBin(['status', WAIT_ID, '--wait'], { OCI_IMPORT_ENDPOINT: service.url });
    expect(ok.code, ok.stderr).toBe(0);
    // off a terminal: a line per status change, as import's wait draws it
    expect(ok.stderr).toContain('queued: 0.0 MiB / 0.0 MiB, blobs 0/2');
    expect(ok.stderr).toContain('running:');
    expect(ok.stderr).toContain('succeeded:');
    expect(ok.stdout).toContain(`digest sha256:${'b'.repeat(64)}`);
    const failed = await runBin(['status', FAIL_ID, '--wait', '--endpoint', service.url]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('import failed [MANIFEST_UNKNOWN]: no such tag');
    // without --wait: the state once, exit 0
    const once = await runBin(['status', FAIL_ID, '--endpoint', service.url]);
    expect(once.code).toBe(0);
    expect(once.stdout).toContain(`${FAIL_ID}  failed`);
  });

  it('--json on failure: {"error":{"code","message"}} on stdout, exit non-zero (usage, refused by the service, a failed import)', async () => {
    const usage = await runBin(['import', '--json', '--source', 'nginx:1.27']);
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stdout)).toEqual({
      error: { code: 'USAGE', message: expect.stringContaining('--target is required') },
    });
    const badFlag = await runBin(['list', '--json', '--no-such-flag'], { OCI_IMPORT_ENDPOINT: service.url });
    expect(badFlag.code).toBe(2);
    expect((JSON.parse(badFlag.stdout) as { error: { code: string } }).error.code).toBe('USAGE');
    const missing = await runBin(['status', '00000000-0000-4000-8000-000000000000', '--json'], {
      OCI_IMPORT_ENDPOINT: service.url,
    });
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stdout)).toEqual({ error: { code: 'NOT_FOUND', message: expect.any(String) } });
    const failed = await runBin(['status', FAIL_ID, '--wait', '--json'], { OCI_IMPORT_ENDPOINT: service.url });
    expect(failed.code).toBe(1);
    expect(JSON.parse(failed.stdout)).toMatchObject({
      status: 'failed',
      error: { code: 'MANIFEST_UNKNOWN', message: 'no such tag' },
    });
  });
});

describe.skipIf(!hasTools)(
  'the installed command against a real registry: the --insecure hint, sync progress on a terminal only',
  () => {
    let work: string;
    let plain: RunningRegistry;
    let image: BuiltImage;
    let rules: string;

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'oci-import-operable-'));
      plain = await startRegistry();
      image = await buildImage({
        dir: join(work, 'image'),
        seed: 'operable',
        platforms: [{ os: 'linux', architecture: 'amd64' }],
        layerSize: 30_000,
      });
      await pushOciLayout(image.layoutDir, `${plain.host}/team/app:1`);
      await pushOciLayout(image.layoutDir, `${plain.host}/team/app:2`);
      rules = join(work, 'rules.json');
    });
    afterAll(async () => {
      await plain?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('a plain-HTTP registry reached over TLS: exit 1 and a hint naming --insecure HOST; --json gives the error object', async () => {
      const run = await runBin([
        'import',
        '--source',
        `${plain.host}/team/app:1`,
        '--target',
        plain.host,
        '--image',
        'copy/app:1',
      ]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/wrong version number|packet length too long/i);
      expect(run.stderr).toContain(`give --insecure ${plain.host}`);
      const json = await runBin([
        'import',
        '--json',
        '--source',
        `${plain.host}/team/app:1`,
        '--target',
        plain.host,
        '--image',
        'copy/app:1',
      ]);
      expect(json.code).toBe(1);
      expect(JSON.parse(json.stdout)).toEqual({
        error: { code: 'CONNECTION_FAILED', message: expect.stringContaining(`https://${plain.host}/`) },
      });
    });

    it.skipIf(!hasScript)(
      'sync on a terminal: a progress line (tags compared, imports done); none with --quiet, none off a terminal',
      async () => {
        const env = { INSECURE_REGISTRIES: plain.host };
        await writeFile(rules, JSON.stringify({ rules: [{ source: `${plain.host}/team/app`, target: 'tty/app' }] }));
        const shown = await runOnTerminal(['sync', '--rules', rules, '--target', plain.host], env);
        expect(shown.code, shown.output).toBe(0);
        expect(shown.output).toContain('sync: 2 tag(s) compared');
        expect(shown.output).toMatch(/imports: \d running, 2\/2 done/);
        expect(await manifestDigest(`${plain.host}/tty/app:2`)).toBe(image.digest);

        await writeFile(rules, JSON.stringify({ rules: [{ source: `${plain.host}/team/app`, target: 'quiet/app' }] }));
        const quiet = await runOnTerminal(['sync', '--rules', rules, '--target', plain.host, '--quiet'], env);
        expect(quiet.code, quiet.output).toBe(0);
        expect(quiet.output).toContain('2 imported');
        expect(quiet.output).not.toContain('tag(s) compared');

        await writeFile(rules, JSON.stringify({ rules: [{ source: `${plain.host}/team/app`, target: 'piped/app' }] }));
        const piped = await runBin(['sync', '--rules', rules, '--target', plain.host], env);
        expect(piped.code, piped.stderr).toBe(0);
        expect(piped.stdout).toContain('2 imported');
        expect(piped.stderr).not.toContain('tag(s) compared');
      },
    );
  },
);
