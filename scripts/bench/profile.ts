/**
 * Where one CLI run's time goes: the run repeated under `node --cpu-prof`, its V8 CPU profile summed by what
 * the sampled code was — waiting (idle), the CLI's own modules (lib/), undici, other packages, Node.js's own
 * modules, the garbage collector, V8 itself (compiling, parsing) — plus the time outside the profiled span
 * (Node.js booting, exiting). Bundled code is named through the bundle's source map. The profiler costs some time
 * of its own: the shares count, the total is a little above an unprofiled run.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { SourceMap, type SourceMapping } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type ProfileCategory = 'idle' | 'lib' | 'undici' | 'packages' | 'node' | 'v8' | 'gc';

export interface ProfileSummary {
  /** From spawning the process to its exit. */
  readonly wallMs: number;
  /** Outside the profiled span: the process starting and Node.js booting, and exiting (writing the profile). */
  readonly outsideMs: number;
  /** Sampled time by category, in ms. */
  readonly byCategory: Readonly<Record<ProfileCategory, number>>;
  /** The CLI's and its packages' functions with the most time of their own, `name file:line (ms)`. */
  readonly topFunctions: readonly string[];
}

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber: number;
}

interface CpuProfile {
  readonly nodes: readonly { readonly id: number; readonly callFrame: CallFrame }[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Where a sampled frame's code came from: the original file and function of bundled code. */
interface Origin {
  readonly category: ProfileCategory;
  readonly name?: string;
}

function originOf(frame: CallFrame, map: SourceMap | undefined): Origin {
  if (frame.functionName === '(idle)') return { category: 'idle' };
  if (frame.functionName === '(garbage collector)') return { category: 'gc' };
  if (frame.functionName === '(program)' || (frame.url === '' && frame.functionName !== '')) return { category: 'v8' };
  if (frame.url.startsWith('node:') || !frame.url.includes('/')) return { category: 'node' };
  // findEntry answers {} where the map has nothing
  const entry = (
    map && frame.url.endsWith('.cjs') ? map.findEntry(frame.lineNumber, frame.columnNumber) : undefined
  ) as (Partial<SourceMapping> & { name?: string }) | undefined;
  // no original: the bundler's own module wrappers
  const source = (entry?.originalSource ?? frame.url.replace(/^.*\//, '')).replace(
    /^.*?(node_modules\/|\/lib\/)/,
    '$1',
  );
  const line = entry?.originalLine !== undefined ? entry.originalLine + 1 : frame.lineNumber + 1;
  const name = `${entry?.name ?? (frame.functionName || '(anonymous)')} ${source.replace(/^node_modules\//, '')}:${line}`;
  if (source.startsWith('node_modules/undici/')) return { category: 'undici', name };
  if (source.startsWith('node_modules/')) return { category: 'packages', name };
  return { category: 'lib', name: name.replace(/ \/lib\//, ' lib/') };
}

/** Sums a profile's samples by category and by function (self time). */
export function summarizeProfile(profile: CpuProfile, wallMs: number, map?: SourceMap): ProfileSummary {
  const origins = new Map(profile.nodes.map((n) => [n.id, originOf(n.callFrame, map)]));
  const byCategory: Record<ProfileCategory, number> = {
    idle: 0,
    lib: 0,
    undici: 0,
    packages: 0,
    node: 0,
    v8: 0,
    gc: 0,
  };
  const byFunction = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const origin = origins.get(id)!;
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000; // a sample lasts until the next one
    byCategory[origin.category] += ms;
    if (origin.name) byFunction.set(origin.name, (byFunction.get(origin.name) ?? 0) + ms);
  });
  const topFunctions = [...byFunction.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([name, ms]) => `${name} (${ms.toFixed(1)} ms)`);
  return {
    wallMs,
    outsideMs: Math.max(0, wallMs - (profile.endTime - profile.startTime) / 1000),
    byCategory,
    topFunctions,
  };
}

/**
 * Runs `node --cpu-prof <args>` once and summarizes its profile. The profile folder is always the same: the CLI
 * keys its code cache by Node.js's flags, so runs under the same flags share one, as unprofiled runs do.
 */
export async function profileNode(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  sourceMapFile?: string,
): Promise<ProfileSummary> {
  const dir = join(tmpdir(), 'oci-import-bench-profile');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir);
  try {
    const spawnedAt = performance.now();
    const child = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, ...args], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString('utf8')).slice(-4000)));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    const wallMs = performance.now() - spawnedAt;
    if (code !== 0) throw new Error(`node --cpu-prof ${args.join(' ')} exited with ${code}:\n${stderr}`);
    const file = (await readdir(dir)).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error('node --cpu-prof wrote no profile');
    const map =
      sourceMapFile && existsSync(sourceMapFile)
        ? new SourceMap(JSON.parse(readFileSync(sourceMapFile, 'utf8')))
        : undefined;
    return summarizeProfile(JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile, wallMs, map);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
