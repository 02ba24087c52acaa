/**
 * Sync passes are bounded whatever a source lists (issue 22, finding 3), against a hostile in-test registry: a tag
 * list paged for ever stops after ⌈MAX_TAGS / page⌉ + 1 requests with TOO_MANY_TAGS; a pass ends at its deadline
 * (SYNC_PASS_SECONDS); names outside the OCI tag grammar never reach a pattern; patterns run in linear time, so the
 * catastrophic `^([0-9]+\.?)+$` against a 35-character tag takes milliseconds, and the process stays responsive.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../lib/config.js';
import { SyncService } from '../../../lib/service/sync-service.js';
import { RegistryClient } from '../../../lib/oci/registry.js';
import { planSync } from '../../../lib/sync/pass.js';
import { parseRules } from '../../../lib/sync/rules.js';
import { startFakeRegistry, type FakeRegistry } from '../../support/fake-registry.js';
import { testService } from '../../support/service.js';

const retry = { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5 };
const DIGEST = `sha256:${'a'.repeat(64)}`;

interface Hostile {
  readonly host: string;
  readonly requests: string[];
  close(): Promise<void>;
}

/** A registry whose tag list is `page(n, url)` for the n-th request; manifests answer HEAD with one digest. */
async function hostile(
  page: (n: number, url: URL) => { tags: unknown[]; next?: boolean; delayMs?: number },
): Promise<Hostile> {
  const requests: string[] = [];
  let lists = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push(`${req.method} ${req.url}`);
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname.endsWith('/tags/list')) {
      const { tags, next, delayMs } = page(lists++, url);
      const answer = (): void => {
        res.writeHead(200, {
          'content-type': 'application/json',
          ...(next ? { link: `</v2/team/app/tags/list?n=1000&last=${lists}>; rel="next"` } : {}),
        });
        res.end(JSON.stringify({ name: 'team/app', tags }));
      };
      if (delayMs) setTimeout(answer, delayMs);
      else answer();
      return;
    }
    if (req.method === 'HEAD' && url.pathname.includes('/manifests/')) {
      res
        .writeHead(200, {
          'docker-content-digest': DIGEST,
          'content-type': 'application/vnd.oci.image.manifest.v1+json',
          'content-length': '2',
        })
        .end();
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    requests,
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

describe('sync passes are bounded (hostile in-test registry)', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((c) => c()));
  });
  const start = async (page: Parameters<typeof hostile>[0]): Promise<{ src: Hostile; dst: FakeRegistry }> => {
    const [src, dst] = await Promise.all([hostile(page), startFakeRegistry()]);
    closers.push(
      () => src.close(),
      () => dst.close(),
    );
    return { src, dst };
  };
  const plan = (
    src: Hostile,
    dst: FakeRegistry,
    tags: object | undefined,
    o: { maxTags: number; signal?: AbortSignal },
  ) =>
    planSync(
      parseRules(
        JSON.stringify([{ source: `${src.host}/team/app`, target: 'mirror/app', ...(tags ? { tags } : {}) }]),
        'rules.json',
      ),
      {
        target: dst.host,
        targetClient: new RegistryClient({ registry: dst.host, insecure: true, retry }),
        sourceClient: () => new RegistryClient({ registry: src.host, insecure: true, retry }),
        concurrency: 4,
        ...o,
      },
    );

  it('empty tag pages with rel=next for ever: TOO_MANY_TAGS after ⌈MAX_TAGS / page⌉ + 1 requests', async () => {
    const { src, dst } = await start(() => ({ tags: [], next: true }));
    for (const maxTags of [10_000, 2_500]) {
      const before = src.requests.length;
      const result = await plan(src, dst, undefined, { maxTags });
      const lists = src.requests.slice(before).filter((r) => r.includes('/tags/list')).length;
      process.stdout.write(
        `[endless empty tag pages] MAX_TAGS ${maxTags}: ${lists} list requests, then ${result.errors[0]?.code}\n`,
      );
      expect(lists).toBe(Math.ceil(maxTags / 1000) + 1);
      expect(result.errors).toEqual([expect.objectContaining({ code: 'TOO_MANY_TAGS' })]);
      expect(result.items).toEqual([]);
    }
  });

  it('a pass ends at SYNC_PASS_SECONDS: a slow, endless tag list is cut off as TIMEOUT, the report written', async () => {
    const { src, dst } = await start(() => ({ tags: ['1.0'], next: true, delayMs: 200 }));
    const t = testService({
      TARGET_REGISTRY: dst.host,
      INSECURE_REGISTRIES: `${src.host},${dst.host}`,
      ALLOWED_SOURCES: src.host,
      SYNC_PASS_SECONDS: '1',
      MAX_TAGS: '1000000',
    });
    const sync = new SyncService(t.service, t.docs, loadConfig(t.env), dst.host);
    const started = Date.now();
    const report = await sync.runPass(parseRules(JSON.stringify([{ source: `${src.host}/team/app` }]), 'rules.json'));
    const elapsed = Date.now() - started;
    process.stdout.write(
      `[slow endless tag list] the pass ended after ${elapsed} ms (SYNC_PASS_SECONDS 1) with ${src.requests.length} requests\n`,
    );
    expect(elapsed).toBeLessThan(1000 + 1000);
    expect(report.errors).toEqual([
      expect.objectContaining({ code: 'TIMEOUT', message: expect.stringContaining('SYNC_PASS_SECONDS') }),
    ]);
    expect(await sync.latest()).toMatchObject({ errors: [{ code: 'TIMEOUT' }] });
  });

  it('names outside the OCI tag grammar are left out before any pattern sees them, and never asked for', async () => {
    const bad = [
      'x'.repeat(129),
      'has space',
      '-leading-dash',
      '.dot',
      '\u001b]0;pwned\u0007',
      'ünïcode',
      '',
      42,
      null,
    ];
    const { src, dst } = await start(() => ({ tags: ['1.0', `a${'b'.repeat(127)}`, ...bad] }));
    const result = await plan(src, dst, { include: ['.*'] }, { maxTags: 100 });
    expect(result.items.map((i) => i.tag).sort()).toEqual(['1.0', `a${'b'.repeat(127)}`]);
    expect(result.tagsInvalid).toBe(7); // the two that are no strings were never tags
    const heads = src.requests.filter((r) => r.startsWith('HEAD'));
    expect(heads).toHaveLength(2);
  });

  it('the catastrophic pattern ^([0-9]+\\.?)+$ against a hostile 35-character tag finishes in under a second', async () => {
    const evil = `${'1'.repeat(34)}a`;
    expect(evil).toHaveLength(35);
    const { src, dst } = await start(() => ({ tags: [evil, '1.2.3', '1.2'] }));
    const started = performance.now();
    const result = await plan(src, dst, { include: ['^([0-9]+\\.?)+$'] }, { maxTags: 100 });
    const ms = performance.now() - started;
    process.stdout.write(`[catastrophic pattern, 35-character tag] the pass took ${ms.toFixed(0)} ms\n`);
    expect(ms).toBeLessThan(1000);
    expect(result.items.map((i) => i.tag)).toEqual(['1.2.3', '1.2']);
  });

  it('the process stays responsive (no event-loop stall of a second) while a pass matches 10,000 tags of 128 characters against 100 patterns', async () => {
    const tags = Array.from({ length: 10_000 }, (_, i) => `${String(i).padStart(5, '0')}${'1'.repeat(122)}a`);
    const { src, dst } = await start(() => ({ tags }));
    // every tag meets all 100: 49 includes miss, the last matches; 49 excludes miss, the last matches
    const include = [...Array.from({ length: 49 }, (_, i) => `^([0-9]+\\.?)+${i}$`), 'a$'];
    const exclude = [...Array.from({ length: 49 }, (_, i) => `(1+1+)+${i}b$`), '1a$'];
    let last = performance.now();
    let worst = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last);
      last = now;
    }, 5);
    const started = performance.now();
    try {
      const result = await plan(src, dst, { include, exclude }, { maxTags: 10_000 });
      expect(result.items).toEqual([]);
      await new Promise((r) => setTimeout(r, 20)); // one more tick: a stall just before the end counts too
    } finally {
      clearInterval(ticker);
    }
    process.stdout.write(
      `[10,000 hostile tags × 100 patterns] pass ${(performance.now() - started).toFixed(0)} ms, longest event-loop stall ${worst.toFixed(0)} ms\n`,
    );
    // matching yields every 10 ms; the bound leaves room for a loaded machine (without the yields: the whole pass)
    expect(worst).toBeLessThan(1000);
  });
});
