/**
 * The sync benchmark: a repository of 100 tags (distinct small images, one 256 KiB layer each) behind the
 * far-away proxy, mirrored into a fresh target by `oci-import sync` and by `skopeo sync`: a first pass (every
 * tag new) and a second pass (nothing changed) into the same target.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildImage } from '../../test/support/fixtures.js';
import type { RunningRegistry } from '../../test/support/registry.js';
import { pushOciLayout, withSkopeoSandbox } from '../../test/support/skopeo.js';
import { timeCommand, type Measurement } from './runners.js';

export const SYNC_TAGS = 100;
export const SYNC_REPOSITORY = 'bench/sync100';

export interface SyncPasses {
  readonly first: Measurement;
  readonly second: Measurement;
}

export interface SyncTool {
  readonly name: string;
  readonly description: string;
  /** Mirrors `source/SYNC_REPOSITORY` into `target` twice; returns where one tag landed (to verify). */
  run(source: string, target: string, work: string): Promise<SyncPasses & { landed: (tag: string) => string }>;
}

/** Pushes SYNC_TAGS distinct small images as tags v1…v100 of SYNC_REPOSITORY; returns their digests by tag. */
export async function pushSyncSource(source: RunningRegistry, dir: string): Promise<Map<string, string>> {
  const digests = new Map<string, string>();
  const tags = Array.from({ length: SYNC_TAGS }, (_, i) => `v${i + 1}`);
  for (let i = 0; i < tags.length; i += 8) {
    await Promise.all(
      tags.slice(i, i + 8).map(async (tag) => {
        const img = await buildImage({
          dir: join(dir, tag),
          seed: `bench-sync-${tag}`,
          layersPerPlatform: 1,
          layerSize: 256 * 1024,
          tag,
        });
        await pushOciLayout(img.layoutDir, `${source.host}/${SYNC_REPOSITORY}:${tag}`);
        digests.set(tag, img.digest);
      }),
    );
  }
  return digests;
}

const ROOT = join(import.meta.dirname, '..', '..');

const ociImportSync: SyncTool = {
  name: 'oci-import',
  description:
    '`node bin/oci-import.js sync --rules rules.json --target DST --insecure SRC --insecure DST`, one rule (the whole repository), default settings (SYNC_CONCURRENCY 8)',
  run: async (source, target, work) => {
    await mkdir(work, { recursive: true });
    const rules = join(work, 'rules.json');
    await writeFile(
      rules,
      JSON.stringify({ rules: [{ source: `${source}/${SYNC_REPOSITORY}`, target: 'mirror/sync100' }] }),
    );
    const pass = () =>
      timeCommand(
        process.execPath,
        [
          join(ROOT, 'bin', 'oci-import.js'),
          'sync',
          '--rules',
          rules,
          '--target',
          target,
          '--insecure',
          source,
          '--insecure',
          target,
        ],
        { PATH: process.env.PATH, HOME: process.env.HOME },
      );
    const first = await pass();
    const second = await pass();
    return { first, second, landed: (tag) => `${target}/mirror/sync100:${tag}` };
  },
};

const skopeoSync: SyncTool = {
  name: 'skopeo',
  description:
    '`skopeo sync --src docker --dest docker --preserve-digests SRC/bench/sync100 DST/mirror`, isolated config',
  run: (source, target) =>
    withSkopeoSandbox(async (sb, globalArgs) => {
      const pass = () =>
        timeCommand(
          'skopeo',
          [
            ...globalArgs,
            'sync',
            '--src',
            'docker',
            '--dest',
            'docker',
            '--preserve-digests',
            '--retry-times',
            '0',
            '--src-tls-verify=false',
            '--dest-tls-verify=false',
            `${source}/${SYNC_REPOSITORY}`,
            `${target}/mirror`,
          ],
          sb.env,
        );
      const first = await pass();
      const second = await pass();
      return { first, second, landed: (tag) => `${target}/mirror/sync100:${tag}` };
    }),
};

export const SYNC_TOOLS: readonly SyncTool[] = [ociImportSync, skopeoSync];

export async function cleanWork(work: string): Promise<void> {
  await rm(work, { recursive: true, force: true });
}
