/**
 * The zip writer of `npm run package`, read back by an independent reader (Info-ZIP `unzip`): every byte, the
 * file modes, the listing.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { zip } from '../../../scripts/package/zip.js';
import { onPath } from '../../support/registry.js';

const execFileP = promisify(execFile);
const hasUnzip = onPath('unzip');
if (!hasUnzip && process.env.OCI_IMPORT_REQUIRE_REGISTRY === '1')
  throw new Error('unzip is required (.ci/run installs it)');

describe.skipIf(!hasUnzip)('zip writer', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('writes an archive unzip tests, lists and extracts byte for byte, with Unix modes', async () => {
    dir = await mkdtemp(join(tmpdir(), 'oci-import-zip-'));
    const entries = [
      {
        name: 'host.json',
        data: Buffer.from('{"version":"2.0"}\n'),
        mode: 0o644,
        mtime: new Date('2026-01-02T03:04:06Z'),
      },
      { name: 'empty.txt', data: Buffer.alloc(0), mode: 0o644, mtime: new Date('2026-01-02T03:04:06Z') },
      { name: 'lib/deep/random.bin', data: randomBytes(200_000), mode: 0o600, mtime: new Date('2026-01-02T03:04:06Z') },
      {
        name: 'bin/tool.js',
        data: Buffer.from('#!/usr/bin/env node\n'.repeat(1000)),
        mode: 0o755,
        mtime: new Date('2026-01-02T03:04:06Z'),
      },
      { name: 'docs/ünïcödé.md', data: Buffer.from('é'), mode: 0o644, mtime: new Date('2026-01-02T03:04:06Z') },
    ];
    const file = join(dir, 'package.zip');
    await writeFile(file, zip(entries));

    const test = await execFileP('unzip', ['-t', file]);
    expect(test.stdout).toContain('No errors detected in compressed data');
    const listing = (await execFileP('unzip', ['-Z1', file])).stdout.trim().split('\n');
    expect(listing).toEqual(entries.map((e) => e.name));

    const out = join(dir, 'out');
    await execFileP('unzip', ['-q', file, '-d', out]);
    for (const e of entries) {
      expect((await readFile(join(out, e.name))).equals(e.data), e.name).toBe(true);
      expect((await stat(join(out, e.name))).mode & 0o777, e.name).toBe(e.mode);
    }
    // deflated: the repetitive file shrinks, the random one does not grow by much
    expect((await stat(file)).size).toBeLessThan(200_000 + 20_000);
  });

  it('an empty archive is the bare end record, which unzip reads as empty', async () => {
    dir = await mkdtemp(join(tmpdir(), 'oci-import-zip-'));
    const file = join(dir, 'empty.zip');
    await writeFile(file, zip([]));
    expect((await readFile(file)).toString('hex')).toBe(`504b0506${'0'.repeat(36)}`);
    const r = await execFileP('unzip', ['-t', file]).catch((e: { stdout: string; stderr: string }) => e);
    expect(r.stdout + r.stderr).toContain('zipfile is empty');
  });
});
