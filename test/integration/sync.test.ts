/**
 * Sync against REAL registries: a CLI pass mirrors exactly the selected tags, a new upstream tag is
 * picked up by the next pass, the dry run writes nothing, a pass over unchanged tags sends the source
 * no manifest GET and no blob byte (counted by a proxy in front of it), and the timer's service path
 * enqueues each changed tag once.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { SyncService } from '../../lib/service/sync-service.js';
import { parseRules } from '../../lib/sync/rules.js';
import { startFarProxy, type FarProxy } from '../../scripts/bench/far-proxy.js';
import { runCli } from '../support/cli.js';
import { buildImage } from '../support/fixtures.js';
import { requireRegistryTools, startRegistry, type RunningRegistry } from '../support/registry.js';
import { testService } from '../support/service.js';
import { manifestDigest, pushOciLayout } from '../support/skopeo.js';

const hasTools = requireRegistryTools();

describe.skipIf(!hasTools)('sync between real registries', () => {
  let src: RunningRegistry;
  let dst: RunningRegistry;
  let proxy: FarProxy;
  let work: string;
  let rulesFile: string;
  const digests: Record<string, string> = {};
  const env = () => ({ INSECURE_REGISTRIES: `${src.host},${dst.host},${proxy.host}` });
  const tags = async (repo: string): Promise<string[]> =>
    (
      (await fetch(`http://${dst.host}/v2/${repo}/tags/list`).then((r) => r.json())) as { tags?: string[] | null }
    ).tags?.sort() ?? [];

  const pushTag = async (tag: string) => {
    const img = await buildImage({ dir: join(work, tag), seed: `sync-${tag}`, layerSize: 20_000 });
    await pushOciLayout(img.layoutDir, `${src.host}/team/app:${tag}`);
    digests[tag] = img.digest;
  };

  beforeAll(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    // A counting proxy in front of the source (no latency, no cap): every request the pass makes is seen.
    proxy = await startFarProxy({ target: src.host, latencyMs: 0, bytesPerSecond: 1e12 });
    work = await mkdtemp(join(tmpdir(), 'oci-import-sync-'));
    for (const tag of ['v1', 'v2', 'dev-1']) await pushTag(tag);
    rulesFile = join(work, 'rules.json');
    await writeFile(
      rulesFile,
      JSON.stringify(
        { rules: [{ source: `${proxy.host}/team/app`, target: 'mirror/app', tags: { include: ['^v[0-9]+$'] } }] },
        null,
        2,
      ),
    );
  });

  afterAll(async () => {
    await proxy?.close();
    await Promise.all([src?.stop(), dst?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('mirrors exactly the selected tags', async () => {
    const run = await runCli(['sync', '--rules', rulesFile, '--target', dst.host], env());
    expect(run.code, run.stderr + run.stdout).toBe(0);
    expect(await tags('mirror/app')).toEqual(['v1', 'v2']);
    expect(await manifestDigest(`${dst.host}/mirror/app:v1`)).toBe(digests.v1);
    expect(await manifestDigest(`${dst.host}/mirror/app:v2`)).toBe(digests.v2);
    expect(run.stdout).toContain('2 imported');
  });

  it('a dry run after a new upstream tag prints the plan and writes nothing', async () => {
    await pushTag('v3');
    const run = await runCli(['sync', '--rules', rulesFile, '--target', dst.host, '--dry-run', '--json'], env());
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { items: { tag: string; outcome: string }[] };
    expect(out.items.map((i) => [i.tag, i.outcome])).toEqual([
      ['v3', 'would import'],
      ['v2', 'unchanged'],
      ['v1', 'unchanged'],
    ]);
    expect(await tags('mirror/app')).toEqual(['v1', 'v2']);
  });

  it('the next pass adds the new tag', async () => {
    const run = await runCli(['sync', '--rules', rulesFile, '--target', dst.host], env());
    expect(run.code, run.stderr).toBe(0);
    expect(await tags('mirror/app')).toEqual(['v1', 'v2', 'v3']);
    expect(await manifestDigest(`${dst.host}/mirror/app:v3`)).toBe(digests.v3);
  });

  it('a pass over unchanged tags sends the source no manifest GET and no blob byte', async () => {
    const before = proxy.stats.log.length;
    const bytesBefore = proxy.stats.bytesDown;
    const run = await runCli(['sync', '--rules', rulesFile, '--target', dst.host, '--json'], env());
    expect(run.code, run.stderr).toBe(0);
    const seen = proxy.stats.log.slice(before);
    expect(seen.filter((r) => r.method === 'GET' && r.path.includes('/manifests/'))).toEqual([]);
    expect(seen.filter((r) => r.path.includes('/blobs/'))).toEqual([]);
    expect(seen.filter((r) => r.method === 'HEAD' && r.path.includes('/manifests/')).length).toBe(3);
    // what did come down is the tag list and nothing of any size
    expect(proxy.stats.bytesDown - bytesBefore).toBeLessThan(2000);
  });

  it('refuses a malformed rules file naming the line', async () => {
    const bad = join(work, 'bad.json');
    await writeFile(
      bad,
      '{\n  "rules": [\n    {\n      "source": "docker.io/library/nginx",\n      "tags": { "incldue": ["^1"] }\n    }\n  ]\n}\n',
    );
    const run = await runCli(['sync', '--rules', bad, '--target', dst.host], env());
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`${bad}:5`);
    expect(run.stderr).toContain('unknown field "incldue"');
  });

  it('the timer path enqueues each changed tag once, through the import queue', async () => {
    const t = testService({
      TARGET_REGISTRY: dst.host,
      INSECURE_REGISTRIES: `${src.host},${dst.host}`,
      ALLOWED_SOURCES: src.host,
    });
    const sync = new SyncService(t.service, t.docs, loadConfig(t.env), dst.host);
    const rules = parseRules(
      JSON.stringify([{ source: `${src.host}/team/app`, target: 'timer/app', tags: { include: ['^v[0-9]+$'] } }]),
      'SYNC_RULES',
    );
    const first = await sync.runPass(rules);
    expect(first.enqueued.map((e) => e.target.split(':').pop()).sort()).toEqual(['v1', 'v2', 'v3']);
    // a second pass while those imports are still queued enqueues nothing new
    const second = await sync.runPass(rules);
    expect(second.enqueued).toEqual([]);
    expect(second.inProgress).toHaveLength(3);
    for (let round = 0; round < 50 && t.queue.sent.length; round++) {
      for (const m of t.queue.drain()) await t.service.handleMessage(m, t.meta());
    }
    expect(await tags('timer/app')).toEqual(['v1', 'v2', 'v3']);
    const third = await sync.runPass(rules);
    expect(third.enqueued).toEqual([]);
    expect(third.skipped).toHaveLength(3);
    expect(await sync.latest()).toEqual(third);
  });
});
