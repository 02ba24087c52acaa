/**
 * Test harness: a throw-away Azurite (in-memory, loopback, free ports) for integration tests. Where Azurite is
 * found, its flags and the port probe are the local host's (scripts/host/azurite.ts, which persists under
 * `.azurite/` on the fixed development ports instead): one launcher, two modes.
 *
 *   const azurite = await startAzurite();
 *   process.env.AzureWebJobsStorage = azurite.connectionString;
 *   ...
 *   await azurite.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { AZURITE_FLAGS, azuriteMainPath, isListening } from '../../scripts/host/azurite.js';

export interface RunningAzurite {
  /** Full connection string for the devstoreaccount1 account on this instance's ports. */
  connectionString: string;
  blobPort: number;
  queuePort: number;
  tablePort: number;
  /** Process id of the Azurite server (for CPU accounting in the benchmark). */
  pid: number | undefined;
  /** Stops Azurite (SIGTERM, then SIGKILL). Idempotent. */
  stop(): Promise<void>;
}

/** Azurite's well-known development account key (public; documented by Microsoft). */
const DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const READY_TIMEOUT_MS = 20_000;

/** Distinct free loopback ports (bound together, then released). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

export function devConnectionString(blobPort: number, queuePort: number, tablePort: number): string {
  return (
    [
      'DefaultEndpointsProtocol=http',
      'AccountName=devstoreaccount1',
      `AccountKey=${DEV_KEY}`,
      `BlobEndpoint=http://127.0.0.1:${blobPort}/devstoreaccount1`,
      `QueueEndpoint=http://127.0.0.1:${queuePort}/devstoreaccount1`,
      `TableEndpoint=http://127.0.0.1:${tablePort}/devstoreaccount1`,
    ].join(';') + ';'
  );
}

export interface AzuriteOptions {
  /** Azurite's debug log (every request it serves) goes to this file: the benchmark counts storage operations. */
  readonly debugLog?: string;
}

async function attempt(o: AzuriteOptions): Promise<RunningAzurite> {
  const [blobPort, queuePort, tablePort] = (await freePorts(3)) as [number, number, number];
  const child: ChildProcess = spawn(
    process.execPath,
    [
      azuriteMainPath(),
      '--inMemoryPersistence',
      ...AZURITE_FLAGS,
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      String(blobPort),
      '--queueHost',
      '127.0.0.1',
      '--queuePort',
      String(queuePort),
      '--tableHost',
      '127.0.0.1',
      '--tablePort',
      String(tablePort),
      ...(o.debugLog ? ['--debug', o.debugLog] : []),
    ],
    { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (b: Buffer) => {
    output = (output + b.toString()).slice(-4000);
  });
  child.stderr?.on('data', (b: Buffer) => {
    output = (output + b.toString()).slice(-4000);
  });
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const stop = async (): Promise<void> => {
    process.off('exit', killOnExit);
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exit;
    clearTimeout(timer);
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const up = await Promise.all([blobPort, queuePort, tablePort].map((port) => isListening(port)));
    if (up.every(Boolean)) break;
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`Azurite did not start on ${blobPort}/${queuePort}/${tablePort}: ${output.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    connectionString: devConnectionString(blobPort, queuePort, tablePort),
    blobPort,
    queuePort,
    tablePort,
    pid: child.pid,
    stop,
  };
}

/** Starts an in-memory Azurite on free loopback ports (retries if a port was taken meanwhile). */
export async function startAzurite(o: AzuriteOptions = {}): Promise<RunningAzurite> {
  let last: unknown;
  for (let i = 0; i < 3; i++) {
    try {
      return await attempt(o);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}
