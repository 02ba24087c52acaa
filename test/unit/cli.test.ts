/** The CLI's command line: usage errors exit 2 with a clear message and never echo a password. */
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

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
    [['import', '--source', 'nginx', '--target', 'r.example', '--username', 'u'], 'give both the username and the password'],
    [['copy'], 'unknown command "copy"'],
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
    const run = await runCli(['import', '--source', '127.0.0.1:9/app:1', '--target', '127.0.0.1:9', '--insecure', '127.0.0.1:9',
      '--username', 'user', '--password', 'pa55-w0rd-secret', '--target-username', 'u2', '--target-password', 'other-secret-2'],
    { BLOB_CONCURRENCY: '1' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('import failed');
    expect(run.stdout + run.stderr).not.toContain('pa55-w0rd-secret');
    expect(run.stdout + run.stderr).not.toContain('other-secret-2');
  });
});
