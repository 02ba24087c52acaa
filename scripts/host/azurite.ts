/**
 * Azurite for `npm start`: when AzureWebJobsStorage is the development storage and nothing listens on
 * the Azurite ports, the host starts Azurite itself (persisted under `<root>/.azurite/`, loopback only)
 * and stops it when the host stops.
 *
 * Azurite runs inside a tiny guard process connected to the host by an IPC channel: when the channel
 * closes — the host exited, crashed or was SIGKILLed — the guard shuts Azurite down gracefully (it saves
 * its database and releases the ports). So no orphaned Azurite keeps ports 10000-10002 after a kill.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { DEV_PORTS } from './settings.js';

/** Flags shared by the host-started Azurite and `npm run azurite`. */
export const AZURITE_FLAGS = ['--skipApiVersionCheck', '--disableTelemetry', '--silent'] as const;

export function azuriteMainPath(): string {
  const require = createRequire(import.meta.url);
  const pkgPath = require.resolve('azurite/package.json');
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { bin?: Record<string, string> };
  const bin = pkg.bin?.azurite ?? 'dist/src/azurite.js';
  return join(dirname(pkgPath), bin);
}

/** True when something accepts TCP connections on host:port. */
export function isListening(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    const done = (result: boolean): void => {
      socket.removeAllListeners();
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export async function waitForPorts(ports: readonly number[], timeoutMs: number, isDead: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const up = await Promise.all(ports.map((p) => isListening(p)));
    if (up.every(Boolean)) return;
    if (isDead()) throw new Error('Azurite exited during start-up');
    if (Date.now() > deadline) throw new Error(`Azurite did not listen on ${ports.join(', ')} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/**
 * Runs with `node -e`: argv = [node, azuriteMain, ...flags]. Loads Azurite in this process; when the IPC
 * channel to the host closes, triggers Azurite's own graceful SIGTERM shutdown (or exits at once if
 * Azurite has not finished starting).
 */
const GUARD_SOURCE = `
const azuriteMain = process.argv[1];
process.argv = [process.execPath, azuriteMain, ...process.argv.slice(2)];
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), 10000).unref();
  if (process.listenerCount('SIGTERM') === 0) process.exit(0);
  process.emit('SIGTERM', 'SIGTERM');
};
process.on('disconnect', stop);
require(azuriteMain);
`;

export interface StartedAzurite {
  readonly logFile: string;
  readonly child: ChildProcess;
  /** Graceful stop (Azurite saves its data); SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

export async function startAzurite(root: string, ports = DEV_PORTS): Promise<StartedAzurite> {
  const location = join(root, '.azurite');
  mkdirSync(location, { recursive: true });
  const logFile = join(location, 'azurite.log');
  const fd = openSync(logFile, 'a');
  const args = [
    '--location',
    location,
    ...AZURITE_FLAGS,
    '--blobHost',
    '127.0.0.1',
    '--blobPort',
    String(ports.blob),
    '--queueHost',
    '127.0.0.1',
    '--queuePort',
    String(ports.queue),
    '--tableHost',
    '127.0.0.1',
    '--tablePort',
    String(ports.table),
  ];
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, ['-e', GUARD_SOURCE, azuriteMainPath(), ...args], {
      cwd: root,
      stdio: ['ignore', fd, fd, 'ipc'],
      // Own process group: Ctrl+C in the terminal reaches the host only, which drains its invocations
      // before it stops Azurite. The IPC channel still ends Azurite when the host dies.
      detached: true,
      windowsHide: true,
      env: { ...process.env, AZURITE_SKIP_API_VERSION_CHECK: 'true' },
    });
  } finally {
    closeSync(fd);
  }
  let exited = false;
  const exitPromise = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  child.unref();
  // The IPC channel must not keep the host alive on its own either.
  (child.channel as { unref?: () => void } | undefined)?.unref?.();

  const stop = async (timeoutMs = 8000): Promise<void> => {
    if (exited) return;
    if (child.connected) child.disconnect();
    else child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await exitPromise;
    clearTimeout(timer);
  };

  try {
    await waitForPorts([ports.blob, ports.queue, ports.table], 30_000, () => exited);
  } catch (err) {
    await stop(2000);
    let tail = '';
    try {
      tail = readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n');
    } catch {
      // no log
    }
    throw new Error(`${(err as Error).message}. Last lines of ${logFile}:\n${tail}`);
  }
  return { logFile, child, stop };
}
