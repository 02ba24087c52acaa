/** The CLI's command line: usage errors exit 2 with a clear message and never echo a password. */
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { startFakeRegistry, type FakeRegistry, type FakeRegistryOptions } from '../support/fake-registry.js';
import { attach, fallbackEntries, fallbackTag, listed, SBOM, seedIndex, SIG } from '../support/referrer-fixtures.js';

describe('oci-import command line', () => {
  it('prints help with exit 0', async () => {
    const run = await runCli(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('oci-import import --source REF');
  });

  it.each([
    [['import'], '--source is required'],
    [['import', '--source', 'nginx:1.27'], '--target is required'],
    [['import', '--source', 'Nginx:1.27', '--target', 'r.example'], 'repository must be lowercase'],
    [['import', '--source', 'nginx:1.27', '--target', 'https://r.example'], 'invalid reference'],
    [['import', '--source', 'nginx', '--target', 'r.example', '--bogus'], "Unknown option '--bogus'"],
    [
      ['import', '--source', 'nginx', '--target', 'r.example', '--username', 'u'],
      'give both the username and the password',
    ],
    [['copy'], 'unknown command "copy"'],
    [
      ['import', '--source', 'nginx', '--target', 'r.example', '--referrer-type', 'application/spdx+json'],
      'give --include-referrers too',
    ],
    [
      ['import', '--source', 'nginx', '--target', 'r.example', '--include-referrers', '--referrer-type', 'spdx'],
      '--referrer-type "spdx" is not a media type',
    ],
    // (nothing listens on port 9 of loopback; the refusal comes before any request)
    [
      ['import', '--source', '127.0.0.1:9/app:1', '--target', '127.0.0.1:9', '--repository', 'mirror/app:1'],
      'repository "mirror/app:1" must be a repository name without tag or digest',
    ],
  ])('%j exits 2: %s', async (args, message) => {
    const run = await runCli(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
  });

  it('reads settings from the environment and names a bad one', async () => {
    const run = await runCli(['import', '--source', 'nginx:1.27', '--target', 'r.example'], { CHUNK_SIZE: 'lots' });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('CHUNK_SIZE');
  });

  it('never prints a password, even when the import fails', async () => {
    // nothing listens on port 9 of loopback: the source registry cannot be reached
    const run = await runCli(
      [
        'import',
        '--source',
        '127.0.0.1:9/app:1',
        '--target',
        '127.0.0.1:9',
        '--insecure',
        '127.0.0.1:9',
        '--username',
        'user',
        '--password',
        'pa55-w0rd-secret',
        '--target-username',
        'u2',
        '--target-password',
        'other-secret-2',
      ],
      { BLOB_CONCURRENCY: '1' },
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('import failed');
    expect(run.stdout + run.stderr).not.toContain('pa55-w0rd-secret');
    expect(run.stdout + run.stderr).not.toContain('other-secret-2');
  });
});

describe('oci-import against fake registries', () => {
  const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
  let src: FakeRegistry;
  let dst: FakeRegistry;
  afterEach(async () => {
    await Promise.all([src?.close(), dst?.close()]);
  });
  const start = async (auth?: FakeRegistryOptions['auth']) => {
    [src, dst] = await Promise.all([startFakeRegistry({ auth }), startFakeRegistry()]);
    const layer = Buffer.from('a layer');
    const config = Buffer.from('{"os":"linux","architecture":"amd64"}');
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: src.putBlob('app', config),
          size: config.length,
        },
        layers: [
          {
            mediaType: 'application/vnd.oci.image.layer.v1.tar',
            digest: src.putBlob('app', layer),
            size: layer.length,
          },
        ],
      }),
    );
    return src.putManifest('app', '1', manifest, OCI_MANIFEST);
  };
  const args = (...more: string[]) => [
    'import',
    '--source',
    `${src.host}/app:1`,
    '--target',
    dst.host,
    '--insecure',
    src.host,
    '--insecure',
    dst.host,
    ...more,
  ];

  it('reads the source password from standard input (--password-stdin), or from OCI_IMPORT_PASSWORD, without a warning', async () => {
    const digest = await start({ kind: 'basic', username: 'u', password: 'stdin-secret-1' });
    const piped = await runCli(args('--username', 'u', '--password-stdin'), {}, 'stdin-secret-1\n');
    expect(piped.stderr).not.toContain('warning');
    expect(piped.code).toBe(0);
    expect(piped.stdout).toContain(`digest ${digest}`);
    const fromEnv = await runCli(args('--username', 'u', '--image', 'other:1'), {
      OCI_IMPORT_PASSWORD: 'stdin-secret-1',
    });
    expect(fromEnv.code).toBe(0);
    expect(piped.stdout + piped.stderr + fromEnv.stdout + fromEnv.stderr).not.toContain('stdin-secret-1');
  });

  it('still takes --password on the command line, with a warning on stderr', async () => {
    await start({ kind: 'basic', username: 'u', password: 'cmdline-secret' });
    const run = await runCli(args('--username', 'u', '--password', 'cmdline-secret'));
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('warning: --password on the command line is visible to other users');
    expect(run.stderr).not.toContain('cmdline-secret');
  });

  it('a long Retry-After fails at once with RATE_LIMITED and the time, unless told to wait (then up to MAX_RETRY_AFTER_SECONDS)', async () => {
    await start();
    src.faults.push({
      method: 'GET',
      path: /\/manifests\/1$/,
      action: { kind: 'status', status: 429, headers: { 'Retry-After': '999999' } },
    });
    const t0 = Date.now();
    const run = await runCli(args());
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/import failed \[RATE_LIMITED\]: .*asked to retry after .* \(at 20\d\d-/);
    src.faults.length = 0;
    src.faults.push({
      method: 'GET',
      path: /\/manifests\/1$/,
      action: { kind: 'status', status: 429, headers: { 'Retry-After': '45' } },
    });
    const waiting = await runCli(args('--wait-rate-limit'), { MAX_RETRY_AFTER_SECONDS: '40' });
    expect(waiting.stderr).toContain('RATE_LIMITED');
    expect(waiting.code).toBe(1);
  });

  it('--wait-rate-limit waits out a Retry-After longer than the 30 s a run waits by itself, then imports', async () => {
    const digest = await start();
    src.faults.push({
      method: 'GET',
      path: /\/manifests\/1$/,
      times: 1,
      action: { kind: 'status', status: 429, headers: { 'Retry-After': '31' } },
    });
    const t0 = Date.now();
    const run = await runCli(args('--wait-rate-limit'), { MAX_RETRY_AFTER_SECONDS: '40' });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`digest ${digest}`);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(30_500);
  }, 90_000);

  it('a blob body that stalls ends the import with TIMEOUT (REQUEST_TIMEOUT_SECONDS), it does not hang', async () => {
    await start();
    src.faults.push({ method: 'GET', path: /\/blobs\//, action: { kind: 'stallBody', bytes: 2 } });
    const t0 = Date.now();
    const run = await runCli(args(), { REQUEST_TIMEOUT_SECONDS: '1' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('import failed [TIMEOUT]');
    expect(Date.now() - t0).toBeLessThan(20_000);
  });
});

describe('oci-import --include-referrers (fake registries)', () => {
  let src: FakeRegistry;
  let dst: FakeRegistry;
  afterEach(async () => {
    await Promise.all([src?.close(), dst?.close()]);
  });

  it('copies the referrers of the chosen types and lists them in --json', async () => {
    [src, dst] = await Promise.all([startFakeRegistry(), startFakeRegistry()]);
    const { index } = seedIndex(src, 'app', '1');
    const sig = attach(src, 'app', index, { configType: SIG, payload: 'sig' });
    const sbom = attach(src, 'app', index, { artifactType: SBOM, payload: 'sbom' });
    fallbackTag(src, 'app', index.digest, [listed(sig, SIG), listed(sbom, SBOM)]);
    const run = await runCli([
      'import',
      '--source',
      `${src.host}/app:1`,
      '--target',
      dst.host,
      '--insecure',
      src.host,
      '--insecure',
      dst.host,
      '--include-referrers',
      '--referrer-type',
      SIG,
      '--json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('plan: 4 manifest(s) (1 referrer(s))');
    const out = JSON.parse(run.stdout) as { digest: string; referrers: object[] };
    expect(out.digest).toBe(index.digest);
    expect(out.referrers).toEqual([{ digest: sig.digest, artifactType: SIG, subject: index.digest }]);
    expect(fallbackEntries(dst, 'app', index.digest).map((e) => e.digest)).toEqual([sig.digest]);

    const plain = await runCli([
      'import',
      '--source',
      `${src.host}/app:1`,
      '--target',
      dst.host,
      '--insecure',
      src.host,
      '--insecure',
      dst.host,
      '--image',
      'plain:1',
      '--json',
    ]);
    expect(JSON.parse(plain.stdout)).not.toHaveProperty('referrers');
    expect(fallbackEntries(dst, 'plain', index.digest)).toEqual([]);
  });
});
