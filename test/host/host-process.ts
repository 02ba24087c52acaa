/**
 * Runs the local Functions host (scripts/host/main.ts through tsx) as a child process for tests and
 * waits for its "Host listening on http://127.0.0.1:PORT" line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The host's arguments for the fixture functions of test/host/fixtures, on a free port. */
export const FIXTURE_HOST_ARGS: readonly string[] = [
  '--main',
  'test/host/fixtures/*.ts',
  '--host-json',
  'test/host/fixtures/host.json',
  '--local-settings',
  'test/host/fixtures/local.settings.fixture.json',
  '--port',
  '0',
];

export interface HostProcess {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything the host wrote to stdout and stderr so far. */
  output(): string;
  /** Sends `signal` and resolves with the exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

export async function startHost(options: {
  args: string[];
  env: Record<string, string | undefined>;
  readyTimeoutMs?: number;
}): Promise<HostProcess> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...options.env })) if (v !== undefined) env[k] = v;
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/host/main.ts', ...options.args], {
    cwd: PROJECT_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (b: Buffer) => {
    output += b.toString();
  });
  child.stderr?.on('data', (b: Buffer) => {
    output += b.toString();
  });
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      exitCode = code;
      resolve(code);
    }),
  );
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<number | null> => {
    process.off('exit', killOnExit);
    if (exitCode !== undefined) return exitCode;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  for (;;) {
    const m = /Host listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
    if (m) return { url: m[1]!, child, output: () => output, stop };
    if (exitCode !== undefined || Date.now() > deadline) {
      await stop('SIGKILL');
      throw new Error(`the host did not start (exit ${String(exitCode)}):\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Polls `probe` until it returns a value other than undefined. */
export async function waitFor<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
