/**
 * Where one CLI run's time goes: the run repeated under `node --cpu-prof`, its V8 CPU profile summed by what
 * the sampled code was — waiting (idle), Node.js's own modules, the bundled CLI (undici included), the garbage
 * collector, V8 itself (compiling, parsing) — plus the time before the profiler started (Node.js booting).
 * The profiler costs some time of its own: the shares count, the total is a little above an unprofiled run.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ProfileSummary {
  /** From spawning the process to its exit. */
  readonly wallMs: number;
  /** Outside the profiled span: the process starting and Node.js booting, and exiting (writing the profile). */
  readonly outsideMs: number;
  /** Sampled time by category, in ms. */
  readonly byCategory: Readonly<Record<ProfileCategory, number>>;
  /** The bundle's functions that used the most time of their own, `name (ms)`. */
  readonly topFunctions: readonly string[];
}

export type ProfileCategory = 'idle' | 'cli' | 'node' | 'gc' | 'v8';

interface CpuProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly CpuProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

function categoryOf(frame: CpuProfileNode['callFrame']): ProfileCategory {
  if (frame.functionName === '(idle)') return 'idle';
  if (frame.functionName === '(garbage collector)') return 'gc';
  if (frame.url.includes('oci-import.cjs') || frame.url.includes('/dist/')) return 'cli';
  if (frame.url.startsWith('node:') || frame.url === '') return frame.functionName === '(program)' ? 'v8' : 'node';
  return 'cli';
}

/** Sums a profile's samples by category and by bundle function (self time). */
export function summarizeProfile(profile: CpuProfile, wallMs: number): ProfileSummary {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const byCategory: Record<ProfileCategory, number> = { idle: 0, cli: 0, node: 0, gc: 0, v8: 0 };
  const byFunction = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const frame = nodes.get(id)!.callFrame;
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000; // a sample lasts until the next one
    const category = categoryOf(frame);
    byCategory[category] += ms;
    if (category === 'cli') {
      const name = `${frame.functionName || '(anonymous)'}:${frame.lineNumber + 1}`;
      byFunction.set(name, (byFunction.get(name) ?? 0) + ms);
    }
  });
  const topFunctions = [...byFunction.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([name, ms]) => `${name} (${ms.toFixed(0)} ms)`);
  return { wallMs, outsideMs: Math.max(0, wallMs - (profile.endTime - profile.startTime) / 1000), byCategory, topFunctions };
}

/** Runs `node --cpu-prof <args>` once and summarizes its profile. */
export async function profileNode(args: readonly string[], env: NodeJS.ProcessEnv): Promise<ProfileSummary> {
  const dir = await mkdtemp(join(tmpdir(), 'oci-bench-prof-'));
  try {
    const spawnedAt = performance.now();
    const child = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
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
    return summarizeProfile(JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile, wallMs);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
