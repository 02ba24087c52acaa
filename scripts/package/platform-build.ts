/**
 * The platform's remote build of a Node.js function app, rebuilt locally: Oryx (microsoft/Oryx
 * src/BuildScriptGenerator/Node/NodeBashBuildSnippet.sh.tpl, NodePlatform.cs, NodeConstants.cs) runs `npm install`,
 * then `npm run build` when package.json has a `build` script, then `npm run build:azure` when it has that one. It
 * prunes development dependencies only when asked through a build property (`prune_dev_dependencies`), which the
 * Functions remote build is not documented to pass; so this project's `build:azure` prunes them itself.
 *
 * Used by `npm run package -- --build` and test/e2e/package.test.ts.
 */
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Ran {
  readonly step: string;
  readonly code: number | null;
  readonly output: string;
  readonly seconds: number;
  /** node_modules after the step (platformBuild only). */
  readonly modules?: Footprint;
}

/** Runs a command to its end; the environment is this one without npm's and vitest's own variables. */
export function run(
  cmd: string,
  args: readonly string[],
  cwd: string,
  timeoutMs = 600_000,
): Promise<Omit<Ran, 'step'>> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(npm_|VITEST|NODE_ENV$|NODE_OPTIONS$)/i.test(k)) env[k] = v;
  }
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => {
      output += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      output += b.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, seconds: (Date.now() - started) / 1000 });
    });
  });
}

/** The steps Oryx runs for this package.json, in its order. `install` is the install command's arguments. */
export function oryxSteps(
  packageJson: { scripts?: Record<string, string> },
  install: readonly string[] = ['install'],
): { step: string; args: string[] }[] {
  const scripts = packageJson.scripts ?? {};
  return [
    { step: 'npm install', args: [...install] },
    ...(scripts.build !== undefined ? [{ step: 'npm run build', args: ['run', 'build'] }] : []),
    ...(scripts['build:azure'] !== undefined ? [{ step: 'npm run build:azure', args: ['run', 'build:azure'] }] : []),
  ];
}

/**
 * Runs the platform's build in `dir` (an unpacked deployment package); stops at the first step that fails.
 * `--prefer-offline`: the lockfile fixes every version either way, only where the tarballs come from differs.
 */
export async function platformBuild(dir: string): Promise<Ran[]> {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  const ran: Ran[] = [];
  for (const { step, args } of oryxSteps(pkg, ['install', '--prefer-offline', '--no-audit', '--no-fund'])) {
    const r = await run('npm', args, dir);
    ran.push({ step, ...r, modules: footprint(join(dir, 'node_modules')) });
    if (r.code !== 0) break;
  }
  return ran;
}

export interface Footprint {
  readonly bytes: number;
  readonly files: number;
  /** Installed package folders (`node_modules/<name>` and nested ones). */
  readonly packages: number;
}

/** Bytes (file sizes, symlinks not followed) and files under `dir`, and the package folders in it. */
export function footprint(dir: string): Footprint {
  let bytes = 0;
  let files = 0;
  let packages = 0;
  const walk = (path: string, inModules: boolean): void => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) {
        if (inModules && !entry.name.startsWith('@') && !entry.name.startsWith('.')) packages++;
        walk(full, entry.name === 'node_modules' || (inModules && entry.name.startsWith('@')));
      } else {
        files++;
        bytes += lstatSync(full).size;
      }
    }
  };
  if (existsSync(dir)) walk(dir, true);
  return { bytes, files, packages };
}

interface LockPackage {
  readonly dev?: boolean;
  readonly optional?: boolean;
  readonly devOptional?: boolean;
  readonly link?: boolean;
}

/**
 * Compares `dir`/node_modules with package-lock.json: the development-only packages still installed (`dev` or
 * `devOptional` in the lockfile) and the production packages missing (neither dev nor optional).
 */
export function devDependencyCheck(dir: string): { devLeft: string[]; prodMissing: string[] } {
  const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as {
    packages?: Record<string, LockPackage>;
  };
  const devLeft: string[] = [];
  const prodMissing: string[] = [];
  for (const [path, info] of Object.entries(lock.packages ?? {})) {
    if (!path.startsWith('node_modules/')) continue;
    const installed = existsSync(join(dir, path, 'package.json'));
    if ((info.dev || info.devOptional) && installed) devLeft.push(path);
    if (!info.dev && !info.devOptional && !info.optional && !installed) prodMissing.push(path);
  }
  return { devLeft, prodMissing };
}

export function formatMiB(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(1)} MiB`;
}
