/**
 * Runs the CLI with captured output, as a user's terminal would see it: `main` in-process (fast, the default),
 * or, with OCI_IMPORT_TEST_CLI=bin, the installed command `node bin/oci-import.js` as a child process — the
 * bundle, its start-up code cache and its exit code, as users run it. CI runs the CLI suites both ways.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { main } from '../../lib/cli/main.js';
import { staleBuild } from '../../scripts/build-freshness.mjs';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(PROJECT_ROOT, 'bin', 'oci-import.js');

/** `bin`: runCli spawns the installed command; anything else: it calls `main` in this process. */
export const CLI_MODE: 'bin' | 'main' = process.env.OCI_IMPORT_TEST_CLI === 'bin' ? 'bin' : 'main';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString('utf8');
    cb();
  }
}

export async function runCli(
  args: string[],
  env: Record<string, string | undefined> = {},
  stdin?: string,
): Promise<CliRun> {
  return CLI_MODE === 'bin' ? runBin(args, env, stdin) : runMain(args, env, stdin);
}

export async function runMain(
  args: string[],
  env: Record<string, string | undefined> = {},
  stdin?: string,
): Promise<CliRun> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await main(args, {
    stdout,
    stderr,
    env,
    stdin: Readable.from(stdin === undefined ? [] : [Buffer.from(stdin)]),
  });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/**
 * What the child gets of this process's environment besides `env` (which is all `main` gets in-process):
 * what Node.js needs to run, and the managed-identity endpoint variables that @azure/identity reads from the
 * process environment in either mode (tests point them at a local stand-in, never at a real endpoint).
 */
const INHERITED = [
  'PATH',
  'HOME',
  'TMPDIR',
  'SYSTEMROOT',
  'IDENTITY_ENDPOINT',
  'IDENTITY_HEADER',
  'MSI_ENDPOINT',
  'MSI_SECRET',
  'IMDS_ENDPOINT',
];

let checkedBuild = false;

/**
 * The installed command in a child process (asynchronously: the registries and token servers a test starts run
 * in this process and must keep answering). `bin` runs another copy of the command (its own code cache).
 * Refuses to run a build older than the code (`npm test` rebuilds it first, through pretest).
 */
export async function runBin(
  args: string[],
  env: Record<string, string | undefined> = {},
  stdin?: string,
  bin = BIN,
): Promise<CliRun> {
  if (!checkedBuild) {
    const stale = staleBuild(PROJECT_ROOT);
    if (stale)
      throw new Error(`the built command is out of date (${stale}): run npm run build (npm test does it first)`);
    checkedBuild = true;
  }
  const inherited = Object.fromEntries(
    INHERITED.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]),
  );
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...inherited, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const run = { stdout: '', stderr: '' };
  child.stdout.on('data', (c: Buffer) => (run.stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (run.stderr += c.toString('utf8')));
  child.stdin.on('error', () => undefined); // a command that never reads its input may exit before taking it
  child.stdin.end(stdin);
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status, signal) => {
      if (signal) run.stderr += `\n[the command was killed by ${signal}]`;
      resolve(status ?? -1);
    });
  });
  return { code, ...run };
}
