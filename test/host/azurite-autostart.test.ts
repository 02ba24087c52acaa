/**
 * With development storage and nothing on the Azurite ports, the host starts Azurite itself (persisted
 * under <root>/.azurite) — and a SIGKILL of the host must not leave Azurite holding the ports.
 * Uses the fixed Azurite ports 10000-10002, so it is skipped when anything listens there — except where the tools
 * are required (OCI_IMPORT_REQUIRE_REGISTRY=1, as CI sets it): there, busy ports fail the test instead of skipping it.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueueServiceClient } from '@azure/storage-queue';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, startHost, waitFor, type HostProcess } from './host-process.js';

const PORTS = [10000, 10001, 10002];

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

const anyListening = async (): Promise<boolean> => (await Promise.all(PORTS.map(listening))).some(Boolean);

describe('Azurite started by the host', () => {
  const root = mkdtempSync(join(tmpdir(), 'host-root-'));
  let host: HostProcess | undefined;

  afterAll(async () => {
    await host?.stop('SIGKILL');
    // Give the guard a moment to shut Azurite down before the directory goes.
    await waitFor(async () => ((await anyListening()) ? undefined : true), 'Azurite ports free', 10_000).catch(
      () => undefined,
    );
    rmSync(root, { recursive: true, force: true });
  });

  it('starts Azurite on the default ports, persists under .azurite, and frees the ports after SIGKILL', async (ctx) => {
    if (await anyListening()) {
      const why = `something already listens on Azurite's default ports ${PORTS.join(', ')}, which this test needs free`;
      if (process.env.OCI_IMPORT_REQUIRE_REGISTRY === '1')
        throw new Error(`${why} (OCI_IMPORT_REQUIRE_REGISTRY=1: not skipped)`);
      ctx.skip(why);
    }
    writeFileSync(
      join(root, 'package.json'),
      JSON.stringify({ name: 'fixture-app', type: 'module', main: 'functions/*.js' }),
    );
    host = await startHost({
      args: [
        '--root',
        root,
        '--main',
        join(PROJECT_ROOT, 'test/host/fixtures/http.ts'),
        '--host-json',
        join(PROJECT_ROOT, 'test/host/fixtures/host.json'),
        '--port',
        '0',
      ],
      // FIXTURE_QUEUE: the queue output of http.ts's `enqueue` (a binding's %SETTING% must resolve)
      env: { AzureWebJobsStorage: undefined, LOCAL_HOST_AZURITE: undefined, FIXTURE_QUEUE: 'fx-autostart' },
    });
    expect(host.output()).toContain('Azurite started by the host');
    expect((await Promise.all(PORTS.map(listening))).every(Boolean)).toBe(true);

    // It is the development account, reachable with UseDevelopmentStorage=true.
    const queues = QueueServiceClient.fromConnectionString('UseDevelopmentStorage=true');
    await queues.getQueueClient('autostart-check').createIfNotExists();
    expect(existsSync(join(root, '.azurite'))).toBe(true);

    await host.stop('SIGKILL');
    await waitFor(
      async () => ((await anyListening()) ? undefined : true),
      'Azurite to release its ports after the host was SIGKILLed',
      10_000,
    );
    // Shut down gracefully: its queue database was written.
    expect(readdirSync(join(root, '.azurite'))).toContain('__azurite_db_queue__.json');
  });
});
