/**
 * Queue-mode throughput: many small imports through the service as deployed, run locally. One Azurite (its
 * debug log counts every storage request: the transactions a Consumption bill counts), one target registry,
 * and 1 or more local hosts sharing one queue (as instances of a Function app share it). The imports are
 * POSTed one after another (each POST's latency measured), then the clock runs until every status says
 * succeeded.
 *
 *   npx tsx scripts/bench/throughput.ts [--imports 100] [--hosts 1]     (prints JSON)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startAzurite, type RunningAzurite } from '../../test/support/azurite.js';
import { buildImage } from '../../test/support/fixtures.js';
import { startRegistry, type RunningRegistry } from '../../test/support/registry.js';
import { pushOciLayout } from '../../test/support/skopeo.js';

const ROOT = join(import.meta.dirname, '..', '..');

export interface ThroughputResult {
  readonly hosts: number;
  readonly imports: number;
  /** POST latencies, ms, in order. */
  readonly postMs: number[];
  /** From the first POST to the last status that says succeeded. */
  readonly totalMs: number;
  /** Storage requests Azurite served during that window (blob and queue), per import. */
  readonly storageOpsPerImport: number;
}

interface Host {
  readonly url: string;
  stop(): Promise<void>;
}

async function startHost(env: Record<string, string>): Promise<Host> {
  const child: ChildProcess = spawn(
    process.execPath,
    [join(ROOT, 'dist', 'scripts', 'host', 'main.js'), '--port', '0', '--no-azurite'],
    {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  const keep = (b: Buffer) => (output = (output + b.toString('utf8')).slice(-20000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 60_000;
  let url: string | undefined;
  while (!(url = /Host listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1])) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the local host did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Requests Azurite served so far (its debug log has one `…StorageContextMiddleware: RequestMethod=` line per request). */
function storageRequests(log: string): number {
  if (!existsSync(log)) return 0;
  return (readFileSync(log, 'utf8').match(/StorageContextMiddleware: RequestMethod=/g) ?? []).length;
}

export async function measureThroughput(o: {
  imports: number;
  hosts: number;
  source: RunningRegistry;
  target: RunningRegistry;
  sourceRef: string;
  env?: Record<string, string>;
}): Promise<ThroughputResult> {
  const dir = mkdtempSync(join(tmpdir(), 'oci-bench-throughput-'));
  const log = join(dir, 'azurite.log');
  let azurite: RunningAzurite | undefined;
  const hosts: Host[] = [];
  try {
    azurite = await startAzurite({ debugLog: log });
    const key = randomBytes(16).toString('hex');
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      LOCAL_HOST_FUNCTION_KEY: key,
      AzureWebJobsStorage: azurite.connectionString,
      TARGET_REGISTRY: o.target.host,
      INSECURE_REGISTRIES: `${o.source.host},${o.target.host}`,
      ALLOWED_SOURCES: o.source.host,
      IMPORT_QUEUE: 'throughput',
      ...o.env,
    };
    hosts.push(...(await Promise.all(Array.from({ length: o.hosts }, () => startHost(env)))));
    const headers = { 'content-type': 'application/json', 'x-functions-key': key };
    const before = storageRequests(log);
    const postMs: number[] = [];
    const urls: string[] = [];
    const started = performance.now();
    for (let i = 0; i < o.imports; i++) {
      const t0 = performance.now();
      const res = await fetch(`${hosts[i % hosts.length]!.url}/api/imports`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ source: o.sourceRef, images: [`throughput/app${i}:1`] }),
      });
      if (res.status !== 202) throw new Error(`POST answered ${res.status}: ${await res.text()}`);
      urls.push(((await res.json()) as { statusUrl: string }).statusUrl);
      postMs.push(performance.now() - t0);
    }
    let polls = 0;
    for (const url of urls) {
      for (;;) {
        polls++;
        const s = (await (await fetch(url, { headers })).json()) as { status: string; error?: unknown };
        if (s.status === 'succeeded') break;
        if (s.status === 'failed') throw new Error(`an import failed: ${JSON.stringify(s.error)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const totalMs = performance.now() - started;
    // the status polls above are the benchmark's, not the imports': one blob read each, subtracted
    const served = storageRequests(log) - before;
    return {
      hosts: o.hosts,
      imports: o.imports,
      postMs,
      totalMs,
      storageOpsPerImport: Math.max(0, served - polls) / o.imports,
    };
  } finally {
    await Promise.all(hosts.map((h) => h.stop()));
    await azurite?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The small image the throughput runs import, pushed into `source`. */
export async function pushSmallImage(source: RunningRegistry, dir: string): Promise<string> {
  const img = await buildImage({ dir, seed: 'throughput', layersPerPlatform: 1, layerSize: 256 * 1024 });
  const ref = `${source.host}/throughput/src:1`;
  await pushOciLayout(img.layoutDir, ref);
  return ref;
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const { values } = parseArgs({
    options: { imports: { type: 'string', default: '100' }, hosts: { type: 'string', default: '1' } },
  });
  const [source, target] = await Promise.all([startRegistry(), startRegistry()]);
  const dir = mkdtempSync(join(tmpdir(), 'oci-bench-small-'));
  try {
    const sourceRef = await pushSmallImage(source, dir);
    const r = await measureThroughput({
      imports: Number(values.imports),
      hosts: Number(values.hosts),
      source,
      target,
      sourceRef,
    });
    const sorted = [...r.postMs].sort((a, b) => a - b);
    process.stdout.write(
      JSON.stringify({
        ...r,
        postMs: undefined,
        postP50: sorted[Math.floor(sorted.length / 2)],
        postP90: sorted[Math.floor(sorted.length * 0.9)],
        importsPerSecond: r.imports / (r.totalMs / 1000),
      }) + '\n',
    );
  } finally {
    await Promise.all([source.stop(), target.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }
}
