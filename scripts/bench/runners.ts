/**
 * The tools the benchmark compares, each one entry of `RUNNERS`: given a source image and a fresh
 * target repository, copy it and report wall time and peak RSS. Every tool runs as its own process
 * under `/usr/bin/time` (peak RSS = the largest process's maximum resident set size).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAzurite, type RunningAzurite } from '../../test/support/azurite.js';
import type { BuiltImage } from '../../test/support/fixtures.js';
import { credArgs, withSkopeoSandbox } from '../../test/support/skopeo.js';

export interface Fixture {
  readonly id: string;
  readonly title: string;
  readonly repository: string;
  readonly tag: string;
  readonly image: BuiltImage;
  /** Bytes of every unique blob (what a copy moves). */
  readonly bytes: number;
}

export interface RunContext {
  readonly fixture: Fixture;
  /** `host:port` the source is read from (the far-away proxy in the "far" scenarios). */
  readonly source: string;
  /** `host:port` of a target registry. */
  readonly target: string;
  /** A repository of the target that has never been written: nothing can be skipped or mounted. */
  readonly targetRepository: string;
  /** Environment additions for our CLI (`--cli-env`), empty for the defaults. */
  readonly cliEnv: Readonly<Record<string, string>>;
}

export interface Measurement {
  readonly ms: number;
  readonly rssBytes: number;
  /** User + system CPU time of the tool's processes. */
  readonly cpuMs: number;
  /** CPU the tool used outside the timed window (the queue mode's host starting): not the tool's
   * time, but not another program's either. */
  readonly untimedCpuMs?: number;
}

export interface Runner {
  readonly name: string;
  /** One line for the report: what exactly runs. */
  readonly description: string;
  run(ctx: RunContext): Promise<Measurement>;
  /** Stops what the runner keeps between runs (the queue mode's Azurite). */
  close?(): Promise<void>;
}

const RUN_TIMEOUT_MS = 300_000;
const ROOT = join(import.meta.dirname, '..', '..');

/** Runs `cmd` under `/usr/bin/time`: wall time measured here, peak RSS and CPU time from time(1). */
export async function timeCommand(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<Measurement> {
  const dir = await mkdtemp(join(tmpdir(), 'oci-bench-time-'));
  const statsFile = join(dir, 'time.txt');
  try {
    const started = performance.now();
    const child = spawn('/usr/bin/time', ['-f', '%M %U %S', '-o', statsFile, cmd, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (b: Buffer) => (output = (output + b.toString('utf8')).slice(-8000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c) => resolve(c));
    }).finally(() => clearTimeout(timer));
    const ms = performance.now() - started;
    if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${code}:\n${output}`);
    const [rssKiB, user, sys] = (await readFile(statsFile, 'utf8')).trim().split('\n').at(-1)!.split(' ').map(Number);
    return { ms, rssBytes: rssKiB! * 1024, cpuMs: (user! + sys!) * 1000 };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Our CLI, compiled (`npm run build`), with the default settings unless `--cli-env` says otherwise. */
const ociImport: Runner = {
  name: 'oci-import',
  description:
    '`node bin/oci-import.js import --source SRC --target DST --image REPO:TAG --insecure SRC --insecure DST` (default settings)',
  run: (ctx) => {
    const f = ctx.fixture;
    return timeCommand(
      process.execPath,
      [
        join(ROOT, 'bin', 'oci-import.js'),
        'import',
        '--source',
        `${ctx.source}/${f.repository}:${f.tag}`,
        '--target',
        ctx.target,
        '--image',
        `${ctx.targetRepository}:${f.tag}`,
        '--insecure',
        ctx.source,
        '--insecure',
        ctx.target,
      ],
      { PATH: process.env.PATH, HOME: process.env.HOME, ...ctx.cliEnv },
    );
  },
};

/**
 * skopeo in the test harness's sandbox (no machine config or credentials). Run as root, skopeo keeps its
 * blob-info cache in /var/lib/containers/cache whatever HOME says; every run's target registry is new,
 * so what it remembers never matches (a mount it tries fails and it copies).
 */
const skopeo: Runner = {
  name: 'skopeo',
  description:
    '`skopeo copy [--all] --preserve-digests docker://SRC docker://DST` (`--all` for the index), isolated config',
  run: (ctx) =>
    withSkopeoSandbox((sb, globalArgs) => {
      const f = ctx.fixture;
      return timeCommand(
        'skopeo',
        [
          ...globalArgs,
          'copy',
          ...(f.image.manifests.length ? ['--all'] : []),
          '--preserve-digests',
          '--quiet',
          '--retry-times',
          '0',
          '--src-tls-verify=false',
          ...credArgs(sb, 'src-', undefined),
          '--dest-tls-verify=false',
          ...credArgs(sb, 'dest-', undefined),
          `docker://${ctx.source}/${f.repository}:${f.tag}`,
          `docker://${ctx.target}/${ctx.targetRepository}:${f.tag}`,
        ],
        sb.env,
      );
    }),
};

/**
 * The floor: every blob at once, each one `curl GET | curl PUT` (POST for a session, then one
 * monolithic PUT streaming the GET's body: `-T -`, since `--data-binary @-` would read the whole blob
 * into memory first), then the manifests, children before the index.
 */
const raw: Runner = {
  name: 'raw curl',
  description: 'bash: per blob in parallel `curl GET | curl -T - PUT ?digest=` after a POST, then manifest GET | PUT',
  run: async (ctx) => {
    const f = ctx.fixture;
    const dir = await mkdtemp(join(tmpdir(), 'oci-bench-raw-'));
    const q = (s: string) => `'${s}'`;
    const script = [
      'set -euo pipefail',
      `S=${q(`http://${ctx.source}/v2/${f.repository}`)}; D=${q(`http://${ctx.target}/v2/${ctx.targetRepository}`)}; T=${q(`http://${ctx.target}`)}`,
      'blob() {',
      '  loc=$(curl -sSf -o /dev/null -D - -X POST "$D/blobs/uploads/" | tr -d "\\r" | awk \'tolower($1)=="location:"{print $2}\')',
      '  case $loc in http*) ;; *) loc="$T$loc";; esac',
      '  case $loc in *\\?*) loc="$loc&digest=$1";; *) loc="$loc?digest=$1";; esac',
      '  curl -sSf "$S/blobs/$1" | curl -sSf -o /dev/null -X PUT -H "Content-Type: application/octet-stream" -T - "$loc"',
      '}',
      'manifest() { curl -sSf -H "Accept: $2" "$S/manifests/$1" | curl -sSf -o /dev/null -X PUT -H "Content-Type: $2" --data-binary @- "$D/manifests/$3"; }',
      'pids=()',
      ...f.image.blobs.map((b) => `blob ${b.digest} & pids+=($!)`),
      'for p in "${pids[@]}"; do wait "$p"; done',
      ...f.image.manifests.map((m) => `manifest ${m.digest} ${q(m.mediaType)} ${m.digest}`),
      `manifest ${f.tag} ${q(f.image.mediaType)} ${f.tag}`,
      '',
    ].join('\n');
    try {
      await writeFile(join(dir, 'copy.sh'), script);
      return await timeCommand('bash', [join(dir, 'copy.sh')], { PATH: process.env.PATH });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};

/** What /proc counts CPU time in (USER_HZ). */
export const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

/** utime + stime of a process so far, in ms (/proc, Linux); 0 once it is gone. */
export function processCpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
  } catch {
    return 0;
  }
}

/** Peak resident set size of a running process (/proc/<pid>/status VmHWM), in bytes. */
function peakRss(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

interface JobStatus {
  status: string;
  updatedAt: string;
  error?: { code: string; message: string };
}

/**
 * How often the queue mode's status is read. Each read is an HTTP invocation and a storage read that share the cores
 * with the copy (every 100 ms, 0.5–0.8 s of CPU in a 5 s import); the time is taken from the record instead.
 */
const STATUS_POLL_MS = 1000;

/** The local host's URL once its output says it is listening (within 60 s, or it throws with that output). */
async function hostListening(host: ChildProcess, output: () => string): Promise<string> {
  const deadline = Date.now() + 60_000;
  let url: string | undefined;
  while (!(url = /Host listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output())?.[1])) {
    if (host.exitCode !== null || Date.now() > deadline) throw new Error(`the local host did not start:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return url;
}

/**
 * POST /api/imports of the fixture, then GET its status every STATUS_POLL_MS until it says succeeded (a failure or
 * RUN_TIMEOUT_MS throws). Returns the milliseconds from the POST to the moment the record became succeeded (its
 * `updatedAt`, written on this machine's clock by the step that ended the import).
 */
async function importThroughHost(url: string, key: string, ctx: RunContext, output: () => string): Promise<number> {
  const f = ctx.fixture;
  const began = Date.now();
  const res = await fetch(`${url}/api/imports`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-functions-key': key },
    body: JSON.stringify({
      source: `${ctx.source}/${f.repository}:${f.tag}`,
      images: [`${ctx.targetRepository}:${f.tag}`],
    }),
  });
  if (res.status !== 202) throw new Error(`POST /api/imports answered ${res.status}: ${await res.text()}`);
  const { statusUrl } = (await res.json()) as { statusUrl: string };
  const until = Date.now() + RUN_TIMEOUT_MS;
  for (;;) {
    const s = (await (await fetch(statusUrl, { headers: { 'x-functions-key': key } })).json()) as JobStatus;
    if (s.status === 'succeeded') return Date.parse(s.updatedAt) - began;
    if (s.status === 'failed')
      throw new Error(`the import failed: ${JSON.stringify(s.error)}\n${output().slice(-4000)}`);
    if (Date.now() > until) throw new Error(`the import is still ${s.status} after ${RUN_TIMEOUT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, STATUS_POLL_MS));
  }
}

/**
 * The service as deployed, run locally: the local Functions host (`dist/scripts/host/main.js`, the
 * same registered functions as Azure) on Azurite, one step of at most STEP_BUDGET_SECONDS per queue
 * message, every chunk's place saved to storage. A host is started for every run (its target is a
 * setting) and is listening before the clock starts: the time is the service's, from the POST to the
 * moment its record says succeeded (the status is polled every STATUS_POLL_MS). Azurite (one for all runs, each
 * run on its own queue) is part of the service: its CPU counts as the tool's.
 */
function queueMode(): Runner {
  let azurite: Promise<RunningAzurite> | undefined;
  let n = 0;
  return {
    name: 'queue mode',
    description:
      '`npm start` (local host and its worker process on Azurite, CHUNK_SIZE not set (the service default: a new session streamed until the step ends, then 8 MiB PATCHes), STEP_BUDGET_SECONDS 2, a function key), `POST /api/imports`, GET the status until it is succeeded',
    run: async (ctx) => {
      const storage = await (azurite ??= startAzurite());
      // A function key, as in Azure (authLevel function): the POST and every poll of the statusUrl send it.
      const key = randomBytes(16).toString('hex');
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        LOCAL_HOST_FUNCTION_KEY: key,
        AzureWebJobsStorage: storage.connectionString,
        TARGET_REGISTRY: ctx.target,
        INSECURE_REGISTRIES: `${ctx.source},${ctx.target}`,
        ALLOWED_SOURCES: ctx.source,
        IMPORT_QUEUE: `bench-${process.pid}-${++n}`,
        STEP_BUDGET_SECONDS: '2',
        ...ctx.cliEnv,
      };
      const azuriteBefore = processCpuMs(storage.pid);
      const host = spawn(
        process.execPath,
        [join(ROOT, 'dist', 'scripts', 'host', 'main.js'), '--port', '0', '--no-azurite'],
        { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let output = '';
      const keep = (b: Buffer) => (output = (output + b.toString('utf8')).slice(-20000));
      host.stdout.on('data', keep);
      host.stderr.on('data', keep);
      const exited = new Promise<void>((resolve) => host.once('exit', () => resolve()));
      try {
        const url = await hostListening(host, () => output);
        // The functions run in the host's worker process (as in Azure): its CPU and memory count too.
        const status = (await (await fetch(`${url}/admin/host/status`)).json()) as { worker?: { pid?: number } };
        const workerPid = status.worker?.pid;
        const cpu = () => processCpuMs(host.pid) + processCpuMs(workerPid) + processCpuMs(storage.pid);
        const cpuBefore = cpu();
        const untimedCpuMs = cpuBefore - azuriteBefore;
        const ms = await importThroughHost(url, key, ctx, () => output);
        if (process.env.BENCH_DEBUG) process.stderr.write(output);
        if (process.env.BENCH_DEBUG)
          process.stderr.write(
            `CPU split (ms, cumulative since start): host ${processCpuMs(host.pid)}, worker ${processCpuMs(workerPid)}, azurite ${processCpuMs(storage.pid)}\n`,
          );
        // Peak of the host plus peak of the worker: an upper bound of the two processes' peak together.
        return {
          ms,
          cpuMs: cpu() - cpuBefore,
          untimedCpuMs,
          rssBytes: peakRss(host.pid!) + (workerPid ? peakRss(workerPid) : 0),
        };
      } finally {
        host.kill('SIGTERM');
        const timer = setTimeout(() => host.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
    },
    close: async () => {
      if (azurite) await (await azurite).stop();
    },
  };
}

/** Every tool, in the order of the report. */
export const RUNNERS: readonly Runner[] = [ociImport, queueMode(), skopeo, raw];

/** The runner every ratio is taken against. */
export const REFERENCE = skopeo.name;
export const FLOOR = raw.name;
