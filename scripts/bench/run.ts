/**
 * `npm run bench` — how fast oci-import copies images, next to skopeo and a raw curl floor, measured in
 * one run on this machine against real registries (CNCF distribution) on loopback.
 *
 *   npm run bench                       3 runs of everything, writes docs/benchmarks.md and .png
 *   npm run bench -- --quick            1 run of everything (also writes the docs, saying so)
 *   npm run bench -- --runs 5
 *   npm run bench -- --only far/single  only scenarios whose id contains the text; report in .bench/ only
 *   npm run bench -- --tools oci-import,skopeo   only these tools; report in .bench/ only
 *   npm run bench -- --cli-env FETCH_CONCURRENCY=8   settings for our CLI (the report names them)
 *   npm run bench -- --report .bench/results.json    write the report of an earlier run again (same numbers)
 *   BENCH_DEBUG=1 npm run bench -- …    print the local host's log after every queue-mode run (its steps, timed)
 *
 * Scenarios: {loopback, far} × {small image, Helm chart, single 300 MiB layer, 3-platform index of 4 × 75 MiB
 * layers}; then a 100-tag sync against `skopeo sync` and 100 small imports through the queue on 1 and 3 hosts. "far" puts
 * the SOURCE behind our far-away proxy (20 ms per request, 25 MB/s per connection and direction) and
 * keeps the target near, as `az acr import` pulling from Docker Hub into an ACR in the same region.
 * Every run copies into a fresh target registry and repository (nothing skipped or mounted); the first
 * run of every tool and scenario is checked with `skopeo inspect --raw` (digest of the result).
 * Runs are interleaved (round 1 of every tool, then round 2, …) so drift hits every tool alike.
 *
 * Needs docker-registry, skopeo, curl and /usr/bin/time (`apt-get install -y time`).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_CHUNK_SIZE, parseSize } from '../../lib/config.js';
import type { Digest } from '../../lib/oci/digest.js';
import { buildHelmChart, buildImage, type BuiltImage } from '../../test/support/fixtures.js';
import { startRegistry, type RunningRegistry } from '../../test/support/registry.js';
import { manifestDigest, pushOciLayout } from '../../test/support/skopeo.js';
import { startFarProxy, type FarProxy } from './far-proxy.js';
import { measureIntake, type IntakeResult } from './intake.js';
import { profileNode, type ProfileSummary } from './profile.js';
import { median, writeReport, type Report, type Result, type ScenarioResult } from './report.js';
import { processCpuMs, RUNNERS, ticksPerSecond, timeCommand, type Fixture, type RunContext } from './runners.js';
import { pushSyncSource, SYNC_TOOLS, SYNC_TAGS, cleanWork } from './sync.js';
import { measureThroughput, pushSmallImage } from './throughput.js';
import { defaultConcurrency, measureInstance, type InstanceResult } from './instance.js';
import type { SyncResult, ThroughputRun } from './report.js';

const MiB = 1024 * 1024;
const ROOT = join(import.meta.dirname, '..', '..');
const BENCH_DIR = join(ROOT, '.bench');
export const FAR = { latencyMs: 20, bytesPerSecond: 25_000_000 };
/** A run during which other programs used more CPU than this (plus 5% of its duration: the kernel's
 * own network work shows up here too) is repeated: the machine may be shared… */
const OTHER_CPU_LIMIT_MS = 300;
/** …at most this many times in all. */
const MAX_ATTEMPTS = 4;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

type BuildOptions = Omit<Parameters<typeof buildImage>[0], 'dir'>;
/** `build` options of buildImage, or `chart` for a Helm chart (an OCI artifact). */
const FIXTURES: readonly { id: string; title: string; build: BuildOptions; chart?: true }[] = [
  {
    id: 'small',
    title: 'small image, one 256 KiB layer',
    build: { layersPerPlatform: 1, layerSize: 256 * 1024, seed: 'bench-small' },
  },
  { id: 'chart', title: 'Helm chart', build: {}, chart: true },
  {
    id: 'single',
    title: 'single 300 MiB layer',
    build: { layersPerPlatform: 1, layerSize: 300 * MiB, seed: 'bench-single', streamLayers: true },
  },
  {
    id: 'index',
    title: '3-platform index, 4 × 75 MiB layers',
    build: {
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
        { os: 'linux', architecture: 's390x' },
      ],
      layersPerPlatform: 2,
      layerSize: 75 * MiB,
      seed: 'bench-index',
      streamLayers: true,
    },
  },
];

const log = (msg: string) => process.stderr.write(`${msg}\n`);

/** CPU time (ms) the whole machine has been busy so far (all cores; /proc/stat, Linux). */
function machineBusy(): number {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = ticks as number[];
  return ((user! + nice! + system! + irq! + softirq! + steal!) * 1000) / ticksPerSecond;
}

/** Waits (at most 2 minutes) until the machine is idle: other programs' load would skew every number. */
async function waitQuiet(): Promise<void> {
  let calm = 0;
  const deadline = Date.now() + 120_000;
  while (calm < 3 && Date.now() < deadline) {
    const before = machineBusy();
    await sleep(1000);
    calm = machineBusy() - before < 150 ? calm + 1 : 0;
  }
  if (calm < 3) log('the machine is still busy with other programs; measuring anyway (disturbed runs are repeated)');
}

/** Reads the CPU time (ms) the registry process has used so far, from /proc (Linux). */
function registryCpu(reg: RunningRegistry): () => number {
  const config = join(reg.dir, 'config.yml');
  const pid = readdirSync('/proc').find((d) => {
    try {
      return /^\d+$/.test(d) && readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').includes(config);
    } catch {
      return false;
    }
  });
  return () => (pid ? processCpuMs(Number(pid)) : NaN);
}

function parse() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      only: { type: 'string' },
      tools: { type: 'string' },
      'cli-env': { type: 'string', multiple: true, default: [] },
      report: { type: 'string' },
    },
  });
  const runs = values.quick ? 1 : Number(values.runs ?? 3);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a whole number ≥ 1');
  const cliEnv: Record<string, string> = {};
  for (const kv of values['cli-env']) {
    const i = kv.indexOf('=');
    if (i < 1) throw new Error(`--cli-env wants NAME=VALUE, got "${kv}"`);
    cliEnv[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const tools = values.tools?.split(',').map((t) => t.trim());
  const runners = RUNNERS.filter((r) => !tools || tools.includes(r.name));
  if (!runners.length) throw new Error(`--tools names none of: ${RUNNERS.map((r) => r.name).join(', ')}`);
  return { runs, only: values.only, cliEnv, runners, report: values.report };
}

function checkTools(): void {
  const missing = ['docker-registry', 'skopeo', 'curl', 'bash'].filter(
    (t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0,
  );
  if (!existsSync('/usr/bin/time')) missing.push('/usr/bin/time (apt-get install -y time)');
  if (missing.length) throw new Error(`the benchmark needs: ${missing.join(', ')}`);
}

/** The small image copied once more under `node --cpu-prof`, into a fresh target: where its time goes. */
async function profileSmallImport(f: Fixture, source: string): Promise<ProfileSummary> {
  await waitQuiet();
  const target = await startRegistry();
  try {
    const args = (repository: string) => [
      join(ROOT, 'bin', 'oci-import.js'),
      'import',
      '--source',
      `${source}/${f.repository}:${f.tag}`,
      '--target',
      target.host,
      '--image',
      `${repository}/${f.id}:${f.tag}`,
      '--insecure',
      source,
      '--insecure',
      target.host,
    ];
    const env = { PATH: process.env.PATH, HOME: process.env.HOME };
    // The first run under the profiler's flags writes their own code cache (bin/oci-import.js), as any first run does.
    const map = join(ROOT, 'dist', 'cli', 'oci-import.cjs.map');
    await profileNode(args('warm-up'), env, map);
    const summary = await profileNode(args('profiled'), env, map);
    const c = summary.byCategory;
    log(
      `[profile] small image: ${(summary.wallMs / 1000).toFixed(2)} s; outside the profile ${summary.outsideMs.toFixed(0)} ms, ` +
        `idle ${c.idle.toFixed(0)} ms, lib ${c.lib.toFixed(0)} ms, undici ${c.undici.toFixed(0)} ms, other packages ${c.packages.toFixed(0)} ms, ` +
        `Node.js ${c.node.toFixed(0)} ms, V8 ${c.v8.toFixed(0)} ms, GC ${c.gc.toFixed(0)} ms; ${summary.topFunctions.join(', ')}`,
    );
    return summary;
  } finally {
    await target.stop();
  }
}

/**
 * One unmeasured small import first: bin/oci-import.js writes V8's code cache of the import command on a
 * command's first run (after every build), and every later run, as any installed command after its first,
 * starts from it. Without this the first measured run would carry the compile, and its peak RSS the
 * optimizing compiler's memory.
 */
async function warmUp(f: Fixture | undefined, source: string): Promise<void> {
  if (!f) return;
  const target = await startRegistry();
  try {
    await timeCommand(
      process.execPath,
      [
        join(ROOT, 'bin', 'oci-import.js'),
        'import',
        '--source',
        `${source}/${f.repository}:${f.tag}`,
        '--target',
        target.host,
        '--image',
        `warm-up/${f.id}:${f.tag}`,
        '--insecure',
        source,
        '--insecure',
        target.host,
      ],
      { PATH: process.env.PATH, HOME: process.env.HOME },
    );
  } finally {
    await target.stop();
  }
}

/** Builds a fixture under .bench/fixtures, or reuses the one built with the same options. */
async function fixture(spec: (typeof FIXTURES)[number]): Promise<Fixture> {
  const dir = join(BENCH_DIR, 'fixtures', spec.id);
  const metaFile = join(BENCH_DIR, 'fixtures', `${spec.id}.json`);
  const key = JSON.stringify({ build: spec.build, chart: spec.chart ?? false });
  let image: BuiltImage | undefined;
  try {
    const meta = JSON.parse(await readFile(metaFile, 'utf8')) as {
      key: string;
      image: BuiltImage & { manifestBytes: string };
    };
    const complete = meta.image.blobs.every((b) =>
      existsSync(join(dir, 'blobs', 'sha256', b.digest.slice('sha256:'.length))),
    );
    if (meta.key === key && complete)
      image = { ...meta.image, manifestBytes: Buffer.from(meta.image.manifestBytes, 'base64') };
  } catch {
    // not built yet
  }
  if (!image) {
    const started = performance.now();
    await rm(dir, { recursive: true, force: true });
    image = spec.chart
      ? { ...(await buildHelmChart({ dir, version: '1.0.0' })) }
      : await buildImage({ ...spec.build, dir, tag: '1' });
    await writeFile(
      metaFile,
      JSON.stringify({ key, image: { ...image, manifestBytes: image.manifestBytes.toString('base64') } }),
    );
    log(`built fixture ${spec.id} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  const bytes = image.blobs.reduce((n, b) => n + b.size, 0);
  return { id: spec.id, title: spec.title, repository: `bench/${spec.id}`, tag: image.tag, image, bytes };
}

function versions(): Record<string, string> {
  const out = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .trim()
        .split('\n')[0]!;
    } catch {
      return 'unknown';
    }
  };
  const meminfo = out('sh', ['-c', 'awk \'/MemTotal/ {printf "%.1f GiB", $2/1048576}\' /proc/meminfo']);
  return {
    cpus: `${out('nproc', [])} × ${out('sh', ['-c', "awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo"])}`,
    memory: meminfo,
    os: `${out('sh', ['-c', '. /etc/os-release && echo "$PRETTY_NAME"'])}, Linux ${out('uname', ['-r'])}`,
    node: process.version,
    skopeo: out('skopeo', ['--version']),
    registry: out('docker-registry', ['--version']),
    curl: out('curl', ['--version']).split(' ').slice(0, 2).join(' '),
  };
}

type Options = ReturnType<typeof parse>;
type Runner = Options['runners'][number];

/** A scenario: one fixture copied from the source over one network (loopback, or the far-away proxy). */
interface Scenario {
  readonly id: string;
  readonly net: 'loopback' | 'far';
  readonly fixture: Fixture;
  readonly source: string;
}

/** What every measured run reads: the options, the far proxy's counters, the source registry's CPU, a run counter. */
interface Bench {
  readonly opts: Options;
  readonly proxy: FarProxy;
  readonly sourceCpu: () => number;
  runs: number;
}

/**
 * One measured run of one runner into a fresh target registry. False when other programs used the CPU meanwhile
 * (the run is repeated, up to MAX_ATTEMPTS); the first run of a runner checks the digest that landed.
 */
async function measureRun(
  b: Bench,
  sc: Scenario,
  runner: Runner,
  r: Result,
  label: string,
  attempt: number,
): Promise<boolean> {
  const target = await startRegistry();
  try {
    const ctx: RunContext = {
      fixture: sc.fixture,
      source: sc.source,
      target: target.host,
      targetRepository: `run${++b.runs}/${sc.fixture.id}`,
      cliEnv: b.opts.cliEnv,
    };
    const targetCpu = registryCpu(target);
    const before = {
      connections: b.proxy.stats.connections,
      target: targetCpu(),
      source: b.sourceCpu(),
      bench: process.cpuUsage(),
      machine: machineBusy(),
    };
    const m = await runner.run(ctx);
    const bench = process.cpuUsage(before.bench);
    const sample = {
      target: targetCpu() - before.target,
      source: b.sourceCpu() - before.source,
      bench: (bench.user + bench.system) / 1000,
      connections: b.proxy.stats.connections - before.connections,
    };
    // CPU the machine spent on anything but this run: another program competing for the cores.
    const other =
      machineBusy() - before.machine - m.cpuMs - (m.untimedCpuMs ?? 0) - sample.target - sample.source - sample.bench;
    const line =
      `[${sc.id}] ${runner.name.padEnd(10)} run ${label}: ${(m.ms / 1000).toFixed(2)} s, ` +
      `${(sc.fixture.bytes / 1e6 / (m.ms / 1000)).toFixed(0)} MB/s, peak RSS ${(m.rssBytes / 1e6).toFixed(0)} MB, CPU: tool ${(m.cpuMs / 1000).toFixed(2)} s, ` +
      `target ${(sample.target / 1000).toFixed(2)} s, source ${(sample.source / 1000).toFixed(2)} s, bench/proxy ${(sample.bench / 1000).toFixed(2)} s, other ${(other / 1000).toFixed(2)} s`;
    if (other > OTHER_CPU_LIMIT_MS + 0.05 * m.ms && attempt < MAX_ATTEMPTS) {
      log(`${line} — other programs used the CPU: run again`);
      r.repeated++;
      await sleep(5000);
      return false;
    }
    r.ms.push(m.ms);
    r.rssBytes.push(m.rssBytes);
    r.cpuMs.push(m.cpuMs);
    r.targetCpuMs.push(sample.target);
    r.sourceCpuMs.push(sample.source);
    r.benchCpuMs.push(sample.bench);
    r.otherCpuMs.push(other);
    if (sc.net === 'far') r.sourceConnections.push(sample.connections);
    if (!r.verified) {
      const got = await manifestDigest(`${target.host}/${ctx.targetRepository}:${sc.fixture.tag}`);
      if (got !== sc.fixture.image.digest)
        throw new Error(`${runner.name} in ${sc.id}: the target holds ${got}, the source ${sc.fixture.image.digest}`);
      r.verified = true;
    }
    log(line);
    return true;
  } finally {
    await target.stop();
  }
}

/**
 * A copy of less than this many bytes takes about 0.1 s, and one run differs from the next by a third (the machine's
 * scheduling, the registries' file system): such scenarios run SHORT_RUNS_FACTOR times as many rounds. 5 since
 * 2026-12-06: with 9 runs, two full runs an hour apart on the same build put the small image at 0.85× and 0.71×
 * skopeo and the chart at 0.75× and 0.91× (docs/benchmarks.md); 15 runs cost the benchmark about a minute more.
 */
const SHORT_SCENARIO_BYTES = 8 * 1024 * 1024;
const SHORT_RUNS_FACTOR = 5;

function roundsOf(b: Bench, sc: Scenario): number {
  return sc.fixture.bytes < SHORT_SCENARIO_BYTES ? b.opts.runs * SHORT_RUNS_FACTOR : b.opts.runs;
}

/** Every runner on one scenario, `roundsOf` rounds of each in turn. */
async function runScenario(b: Bench, sc: Scenario): Promise<ScenarioResult> {
  await waitQuiet();
  const byRunner = new Map<string, Result>(
    b.opts.runners.map((r) => [
      r.name,
      {
        runner: r.name,
        ms: [],
        rssBytes: [],
        cpuMs: [],
        targetCpuMs: [],
        sourceCpuMs: [],
        benchCpuMs: [],
        otherCpuMs: [],
        sourceConnections: [],
        repeated: 0,
        verified: false,
      },
    ]),
  );
  const rounds = roundsOf(b, sc);
  for (let round = 1; round <= rounds; round++) {
    for (const runner of b.opts.runners) {
      for (
        let attempt = 1;
        !(await measureRun(b, sc, runner, byRunner.get(runner.name)!, `${round}/${rounds}`, attempt));
        attempt++
      );
    }
  }
  return {
    id: sc.id,
    net: sc.net,
    fixture: { id: sc.fixture.id, title: sc.fixture.title, bytes: sc.fixture.bytes, digest: sc.fixture.image.digest },
    results: [...byRunner.values()],
  };
}

/** How fast the CLI takes in a big blob, and how long it and a bare Node.js take to start. */
async function intakeAndStartup(
  fixtures: readonly Fixture[],
  opts: Options,
): Promise<{ intake: IntakeResult[]; startupMs: number[]; nodeStartupMs: number[] }> {
  const single = fixtures.find((f) => f.id === 'single')!;
  const layer = single.image.blobs.reduce((a, b) => (b.size > a.size ? b : a));
  const bytes = await readFile(join(single.image.layoutDir, 'blobs', 'sha256', layer.digest.slice('sha256:'.length)));
  await waitQuiet();
  const chunkSize = opts.cliEnv.CHUNK_SIZE ? parseSize('CHUNK_SIZE', opts.cliEnv.CHUNK_SIZE) : DEFAULT_CHUNK_SIZE;
  const intake = await measureIntake(bytes, layer.digest as Digest, chunkSize, opts.runs);
  for (const i of intake) log(`[intake] ${i.mode}: ${i.ms.map((ms) => (ms / 1000).toFixed(2)).join(', ')} s`);
  const startupMs: number[] = [];
  const nodeStartupMs: number[] = [];
  for (let i = 0; i < opts.runs; i++)
    startupMs.push(
      (await timeCommand(process.execPath, [join(ROOT, 'bin', 'oci-import.js'), '--help'], { PATH: process.env.PATH }))
        .ms,
    );
  for (let i = 0; i < opts.runs; i++)
    nodeStartupMs.push((await timeCommand(process.execPath, ['-e', '0'], { PATH: process.env.PATH })).ms);
  log(
    `[startup] oci-import --help: ${startupMs.map((ms) => (ms / 1000).toFixed(2)).join(', ')} s; node -e 0: ${nodeStartupMs.map((ms) => (ms / 1000).toFixed(2)).join(', ')} s`,
  );
  return { intake, startupMs, nodeStartupMs };
}

type Measured = Pick<
  Report,
  'scenarios' | 'intake' | 'startupMs' | 'nodeStartupMs' | 'smallProfile' | 'sync' | 'throughput' | 'instance'
>;

/** Every suite `--only` selects, against one source registry (and the far proxy in front of it). */
async function measureAll(opts: Options, fixtures: readonly Fixture[]): Promise<Measured> {
  let source: RunningRegistry | undefined;
  let proxy: FarProxy | undefined;
  try {
    source = await startRegistry();
    for (const f of fixtures) {
      const t = performance.now();
      await pushOciLayout(f.image.layoutDir, `${source.host}/${f.repository}:${f.tag}`);
      log(
        `pushed ${f.id} (${(f.bytes / 1e6).toFixed(0)} MB) to the source in ${((performance.now() - t) / 1000).toFixed(1)} s`,
      );
    }
    proxy = await startFarProxy({ target: source.host, ...FAR });
    await warmUp(
      fixtures.find((f) => f.id === 'small'),
      source.host,
    );
    const scenarios: Scenario[] = [
      ...fixtures.map((f) => ({ id: `loopback/${f.id}`, net: 'loopback' as const, fixture: f, source: source!.host })),
      ...fixtures.map((f) => ({ id: `far/${f.id}`, net: 'far' as const, fixture: f, source: proxy!.host })),
    ].filter((sc) => !opts.only || sc.id.includes(opts.only));
    const bench: Bench = { opts, proxy, sourceCpu: registryCpu(source), runs: 0 };
    const results: ScenarioResult[] = [];
    for (const sc of scenarios) results.push(await runScenario(bench, sc));
    const selected = (name: string): boolean => !opts.only || name.includes(opts.only);
    const small = fixtures.find((f) => f.id === 'small');
    return {
      scenarios: results,
      ...(opts.only ? { intake: [], startupMs: [], nodeStartupMs: [] } : await intakeAndStartup(fixtures, opts)),
      smallProfile: small && selected('loopback/small') ? await profileSmallImport(small, source.host) : undefined,
      sync: selected('sync') ? await syncSuite(source, proxy, opts.runs) : [],
      throughput: selected('throughput') ? await throughputSuite(source, opts.runs) : [],
      instance: selected('instance') ? await instanceSuite(source, fixtures) : [],
    };
  } finally {
    for (const r of opts.runners) await r.close?.();
    await proxy?.close();
    await source?.stop();
  }
}

async function main(): Promise<void> {
  const benchStarted = performance.now();
  const opts = parse();
  if (opts.report) {
    const written = await writeReport(JSON.parse(await readFile(opts.report, 'utf8')) as Report);
    log(`wrote ${written.join(', ')} from ${opts.report}`);
    return;
  }
  checkTools();
  await mkdir(BENCH_DIR, { recursive: true });
  log('building the CLI (npm run build)…');
  execFileSync('npm', ['run', '-s', 'build'], { cwd: ROOT, stdio: 'inherit' });
  const fixtures = [];
  for (const spec of FIXTURES) fixtures.push(await fixture(spec));
  const measured = await measureAll(opts, fixtures);

  const command = ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' ');
  const toDocs = !opts.only && opts.runners.length === RUNNERS.length;
  const written = await writeReport({
    dir: toDocs ? join(ROOT, 'docs') : BENCH_DIR,
    rawFile: join(BENCH_DIR, 'results.json'),
    command,
    runs: opts.runs,
    cliEnv: opts.cliEnv,
    far: FAR,
    machine: versions(),
    date: new Date().toISOString(),
    durationMs: performance.now() - benchStarted,
    ...measured,
  });
  log(`wrote ${written.join(', ')} in ${((performance.now() - benchStarted) / 1000).toFixed(0)} s total`);
}

/** The 100-tag repository mirrored through the far-away proxy by each sync tool: a first and a second pass. */
async function syncSuite(source: RunningRegistry, proxy: FarProxy, runs: number): Promise<SyncResult[]> {
  const dir = join(BENCH_DIR, 'fixtures', 'sync');
  await rm(dir, { recursive: true, force: true });
  const t = performance.now();
  const digests = await pushSyncSource(source, dir);
  log(`pushed ${SYNC_TAGS} tags for the sync benchmark in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const out = SYNC_TOOLS.map((tool) => ({
    tool: tool.name,
    description: tool.description,
    firstMs: [] as number[],
    secondMs: [] as number[],
    firstCpuMs: [] as number[],
    secondCpuMs: [] as number[],
    firstRssBytes: [] as number[],
    secondRssBytes: [] as number[],
  }));
  for (let round = 1; round <= runs; round++) {
    for (const [i, tool] of SYNC_TOOLS.entries()) {
      await waitQuiet();
      const target = await startRegistry();
      const work = join(BENCH_DIR, 'sync-work');
      try {
        const r = await tool.run(proxy.host, target.host, work);
        const got = await manifestDigest(r.landed('v42'));
        if (got !== digests.get('v42'))
          throw new Error(`${tool.name} sync: the target holds ${got} for v42, the source ${digests.get('v42')}`);
        out[i]!.firstMs.push(r.first.ms);
        out[i]!.secondMs.push(r.second.ms);
        out[i]!.firstCpuMs.push(r.first.cpuMs);
        out[i]!.secondCpuMs.push(r.second.cpuMs);
        out[i]!.firstRssBytes.push(r.first.rssBytes);
        out[i]!.secondRssBytes.push(r.second.rssBytes);
        log(
          `[sync] ${tool.name.padEnd(10)} run ${round}/${runs}: first pass ${(r.first.ms / 1000).toFixed(2)} s, second pass ${(r.second.ms / 1000).toFixed(2)} s`,
        );
      } finally {
        await target.stop();
        await cleanWork(work);
      }
    }
  }
  await rm(dir, { recursive: true, force: true });
  return out;
}

/**
 * One instance of the service at its default concurrency (host.json): as many imports of each image at once
 * as it runs steps at once, into a fresh target, on loopback. Memory, CPU, busy time and the counts the
 * cost table is made of (scripts/bench/instance.ts).
 */
async function instanceSuite(source: RunningRegistry, fixtures: readonly Fixture[]): Promise<InstanceResult[]> {
  const out: InstanceResult[] = [];
  const atOnce = defaultConcurrency();
  for (const f of fixtures.filter((x) => x.id !== 'chart')) {
    await waitQuiet();
    const target = await startRegistry();
    try {
      const r = await measureInstance({
        image: f.id,
        bytes: f.bytes,
        sourceRef: `${source.host}/${f.repository}:${f.tag}`,
        atOnce,
        source,
        target,
      });
      out.push(r);
      log(
        `[instance] ${atOnce} × ${f.id} at once: ${(r.totalMs / 1000).toFixed(2)} s, worker peak RSS ${(r.workerPeakRssBytes / 1e6).toFixed(0)} MB ` +
          `(idle ${(r.workerIdleRssBytes / 1e6).toFixed(0)} MB), host ${(r.hostPeakRssBytes / 1e6).toFixed(0)} MB, worker CPU ${(r.workerCpuMs / 1000).toFixed(2)} s, ` +
          `busy ${(r.busyMs / 1000).toFixed(2)} s, executions ${JSON.stringify(r.executions)}, storage operations ${r.storageOps}`,
      );
    } finally {
      await target.stop();
    }
  }
  return out;
}

/** 100 small imports POSTed to the local host(s), on loopback: 1 host, then 3 hosts sharing one queue. */
async function throughputSuite(source: RunningRegistry, runs: number): Promise<ThroughputRun[]> {
  const dir = join(BENCH_DIR, 'fixtures', 'throughput');
  await rm(dir, { recursive: true, force: true });
  const sourceRef = await pushSmallImage(source, dir);
  const out: ThroughputRun[] = [];
  for (const hosts of [1, 3]) {
    for (let round = 1; round <= runs; round++) {
      await waitQuiet();
      const target = await startRegistry();
      try {
        const r = await measureThroughput({ imports: 100, hosts, source, target, sourceRef });
        out.push(r);
        log(
          `[throughput] ${hosts} host(s) run ${round}/${runs}: ${r.imports} imports in ${(r.totalMs / 1000).toFixed(2)} s, ` +
            `POST p50 ${median(r.postMs).toFixed(0)} ms, ${r.storageOpsPerImport.toFixed(1)} storage operations per import`,
        );
      } finally {
        await target.stop();
      }
    }
  }
  await rm(dir, { recursive: true, force: true });
  return out;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
