/**
 * The service at its default concurrency, as one Flex Consumption instance runs it: one local host (the
 * registered functions in their worker process, on Azurite) with the default settings, and as many imports
 * at once as host.json lets one instance run steps at once (batchSize + newBatchThreshold). Measured per case:
 * the worker's and the host's peak RSS (VmHWM: each case gets fresh processes), the worker's CPU time, the
 * time the instance was busy (the union of its invocations, from the host's log: what on-demand billing
 * counts), the executions, and the storage requests Azurite served (its debug log), per import.
 *
 * Run by `npm run bench` (run.ts); the cost table of docs/benchmarks.md is made from these counts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAzurite, type RunningAzurite } from '../../test/support/azurite.js';
import type { RunningRegistry } from '../../test/support/registry.js';
import { processCpuMs } from './runners.js';

const ROOT = join(import.meta.dirname, '..', '..');

export interface InstanceResult {
  /** Which image (fixture id) every import copied. */
  readonly image: string;
  /** Blob bytes of one import. */
  readonly bytes: number;
  /** Imports submitted at once (the steps one instance runs at once). */
  readonly atOnce: number;
  /** From the first POST to the last status that says succeeded. */
  readonly totalMs: number;
  /** The worker's RSS once started, before the imports: the runtime, the app's modules and SDKs. */
  readonly workerIdleRssBytes: number;
  readonly workerPeakRssBytes: number;
  readonly hostPeakRssBytes: number;
  /** User + system CPU of the worker process (the functions' code) in that window. */
  readonly workerCpuMs: number;
  /** Time at least one function ran (the union of the invocations): what an instance bills for. */
  readonly busyMs: number;
  /** Invocations by function name. */
  readonly executions: Readonly<Record<string, number>>;
  /** Storage requests Azurite served in that window (blob and queue, the pollers' included), minus the benchmark's status reads. */
  readonly storageOps: number;
}

interface Host {
  readonly url: string;
  readonly pid: number;
  readonly workerPid?: number;
  log(): string;
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
  const keep = (b: Buffer) => (output += b.toString('utf8'));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 60_000;
  let url: string | undefined;
  while (!(url = /Host listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1])) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`the local host did not start:\n${output.slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const status = (await (await fetch(`${url}/admin/host/status`)).json()) as { worker?: { pid?: number } };
  return {
    url,
    pid: child.pid!,
    workerPid: status.worker?.pid,
    log: () => output,
    stop: async () => {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A process's peak (VmHWM) or current (VmRSS) resident set, bytes. */
function rss(pid: number | undefined, field: 'VmHWM' | 'VmRSS' = 'VmHWM'): number {
  if (pid === undefined) return NaN;
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

function storageRequests(log: string): number {
  if (!existsSync(log)) return 0;
  return (readFileSync(log, 'utf8').match(/StorageContextMiddleware: RequestMethod=/g) ?? []).length;
}

/** Invocations in the host's log (`[<ISO time>] … Executed 'Functions.<name>' (…, Duration=<n>ms)`), as intervals by name. */
export function invocations(log: string): { name: string; start: number; end: number }[] {
  const out: { name: string; start: number; end: number }[] = [];
  for (const m of log.matchAll(
    /^\[([^\]]+)\][^\n]*Executed 'Functions\.(\w+)' \([^,]+, Id=[^,]+, Duration=(\d+)ms\)/gm,
  )) {
    const end = Date.parse(m[1]!);
    out.push({ name: m[2]!, start: end - Number(m[3]), end });
  }
  return out;
}

/** Length of the union of intervals. */
export function unionMs(xs: readonly { start: number; end: number }[]): number {
  let total = 0;
  let until = -Infinity;
  for (const x of [...xs].sort((a, b) => a.start - b.start)) {
    if (x.end <= until) continue;
    total += x.end - Math.max(x.start, until);
    until = x.end;
  }
  return total;
}

/** host.json's queue settings: how many steps one instance runs at once. */
export function defaultConcurrency(): number {
  const q = (
    JSON.parse(readFileSync(join(ROOT, 'host.json'), 'utf8')) as {
      extensions?: { queues?: { batchSize?: number; newBatchThreshold?: number } };
    }
  ).extensions?.queues;
  const batch = q?.batchSize ?? 16;
  return batch + (q?.newBatchThreshold ?? Math.floor(batch / 2));
}

/** All the imports at once, one POST each; their status URLs. */
async function postImports(
  hostUrl: string,
  headers: Record<string, string>,
  o: { image: string; sourceRef: string; atOnce: number },
): Promise<string[]> {
  return Promise.all(
    Array.from({ length: o.atOnce }, async (_, i) => {
      const res = await fetch(`${hostUrl}/api/imports`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ source: o.sourceRef, images: [`instance/${o.image}${i}:1`] }),
      });
      if (res.status !== 202) throw new Error(`POST answered ${res.status}: ${await res.text()}`);
      return ((await res.json()) as { statusUrl: string }).statusUrl;
    }),
  );
}

/** Polls every status URL until its import has succeeded (a failed one throws); how many status reads that took. */
async function awaitSucceeded(urls: readonly string[], headers: Record<string, string>): Promise<number> {
  let polls = 0;
  await Promise.all(
    urls.map(async (url) => {
      for (;;) {
        polls++;
        const s = (await (await fetch(url, { headers })).json()) as { status: string; error?: unknown };
        if (s.status === 'succeeded') return;
        if (s.status === 'failed') throw new Error(`an import failed: ${JSON.stringify(s.error)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }),
  );
  return polls;
}

/** A step's status says succeeded before its invocation has returned: waits (5 s at most) for the host's last "Executed". */
async function awaitLastInvocation(host: Host, logBefore: number): Promise<void> {
  for (let seen = -1, until = Date.now() + 5000; Date.now() < until;) {
    const now = invocations(host.log().slice(logBefore)).length;
    if (now === seen) break;
    seen = now;
    await new Promise((r) => setTimeout(r, 400));
  }
}

export async function measureInstance(o: {
  image: string;
  bytes: number;
  sourceRef: string;
  atOnce: number;
  source: RunningRegistry;
  target: RunningRegistry;
  env?: Record<string, string>;
}): Promise<InstanceResult> {
  const dir = mkdtempSync(join(tmpdir(), 'oci-bench-instance-'));
  const azuriteLog = join(dir, 'azurite.log');
  let azurite: RunningAzurite | undefined;
  let host: Host | undefined;
  try {
    azurite = await startAzurite({ debugLog: azuriteLog });
    const key = randomBytes(16).toString('hex');
    host = await startHost({
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      LOCAL_HOST_FUNCTION_KEY: key,
      AzureWebJobsStorage: azurite.connectionString,
      TARGET_REGISTRY: o.target.host,
      INSECURE_REGISTRIES: `${o.source.host},${o.target.host}`,
      ALLOWED_SOURCES: o.source.host,
      IMPORT_QUEUE: 'instance',
      ...o.env,
    });
    const headers = { 'content-type': 'application/json', 'x-functions-key': key };
    const workerIdleRssBytes = rss(host.workerPid, 'VmRSS');
    const logBefore = host.log().length;
    const opsBefore = storageRequests(azuriteLog);
    const cpuBefore = processCpuMs(host.workerPid);
    const started = performance.now();
    const urls = await postImports(host.url, headers, o);
    const polls = await awaitSucceeded(urls, headers);
    const totalMs = performance.now() - started;
    await awaitLastInvocation(host, logBefore);
    const workerCpuMs = processCpuMs(host.workerPid) - cpuBefore;
    // the status reads are the benchmark's (one function execution and one blob read each): left out
    const runs = invocations(host.log().slice(logBefore)).filter((x) => x.name !== 'getImport');
    // HTTP invocations are not in the host's log: one POST per import (createImport)
    const executions: Record<string, number> = { createImport: o.atOnce };
    for (const x of runs) executions[x.name] = (executions[x.name] ?? 0) + 1;
    return {
      image: o.image,
      bytes: o.bytes,
      atOnce: o.atOnce,
      totalMs,
      workerIdleRssBytes,
      workerPeakRssBytes: rss(host.workerPid),
      hostPeakRssBytes: rss(host.pid),
      workerCpuMs,
      busyMs: unionMs(runs),
      executions,
      storageOps: Math.max(0, storageRequests(azuriteLog) - opsBefore - polls),
    };
  } finally {
    await host?.stop();
    await azurite?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
