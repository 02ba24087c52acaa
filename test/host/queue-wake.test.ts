/**
 * The local host's stand-in for the queues extension's SharedQueueWatcher (scripts/host/outputs.ts): a queue output
 * binding (of a queue-triggered function or an HTTP-triggered one) that sends to a queue this host listens on ends
 * that listener's back-off at once, where a message sent with the storage SDK waits for the next poll, even when the
 * invocation that sent it has ended. A contract test of the emulator, as host.integration.test.ts: the sources are
 * named in scripts/host/README.md.
 *
 * maxPollingInterval is raised to a minute here, so the back-off is long enough to tell the two apart: the fixture
 * function sleeps 4.5 s. Its listener, which found that message, polls again after 0.1, 0.3, 0.7, 1.5, 3.1 and
 * 6.3 s (each wait up to 20 % longer): a message that nothing wakes the listener for waits for the poll at 6.3 s.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueueServiceClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type RunningAzurite } from '../support/azurite.js';
import { FIXTURE_HOST_ARGS, startHost, waitFor, type HostProcess } from './host-process.js';

interface Seen {
  fn: string;
  payload: unknown;
  at: string;
}

const suffix = randomBytes(3).toString('hex');
const QUEUE = `fx-wake-${suffix}`;
const SLEEP_MS = 4500;

describe('local Functions host: a queue output wakes its own listener', () => {
  let azurite: RunningAzurite;
  let host: HostProcess;
  const stateDir = mkdtempSync(join(tmpdir(), 'host-wake-state-'));
  const seen = (): Seen[] => {
    const file = join(stateDir, 'seen.jsonl');
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Seen)
      .filter((s) => s.fn === 'queueWorker');
  };

  beforeAll(async () => {
    azurite = await startAzurite();
    host = await startHost({
      args: [...FIXTURE_HOST_ARGS],
      env: {
        AzureWebJobsStorage: azurite.connectionString,
        FIXTURE_QUEUE: QUEUE,
        // the fixture forwards to its own queue
        FIXTURE_OUT_QUEUE: QUEUE,
        FIXTURE_FAIL_QUEUE: `fx-wake-fail-${suffix}`,
        FIXTURE_TIMER_SCHEDULE: undefined,
        FIXTURE_STATE_FILE: join(stateDir, 'seen.jsonl'),
        AzureFunctionsJobHost__extensions__queues__maxPollingInterval: '00:01:00',
      },
    });
  });

  afterAll(async () => {
    if (process.env.DEBUG_HOST_OUTPUT) process.stderr.write(host?.output() ?? '');
    await host?.stop('SIGKILL');
    await azurite?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('runs a message forwarded through an output binding as soon as it is sent, not at the next poll', async () => {
    const queue = QueueServiceClient.fromConnectionString(azurite.connectionString).getQueueClient(QUEUE);
    await queue.createIfNotExists();
    await queue.sendMessage(
      Buffer.from(JSON.stringify({ tag: 'first', sleepMs: SLEEP_MS, forward: 'second' })).toString('base64'),
    );
    const [first, forwarded] = await waitFor(
      async () => {
        const all = seen();
        const a = all.find((s) => (s.payload as { tag?: string }).tag === 'first');
        const b = all.find((s) => (s.payload as { forwarded?: boolean }).forwarded === true);
        return a && b ? [a, b] : undefined;
      },
      'the first message and the one it forwarded',
      30_000,
    );
    const gapMs = Date.parse(forwarded.at) - Date.parse(first.at);
    expect(gapMs).toBeGreaterThanOrEqual(SLEEP_MS);
    // the next poll without the wake-up: 6.3 s after the first message was found, at the earliest
    expect(gapMs).toBeLessThan(5800);
  });

  it('runs a message an HTTP function sent through its output binding at once, as POST /api/imports sends its plan step', async () => {
    const queue = QueueServiceClient.fromConnectionString(azurite.connectionString).getQueueClient(QUEUE);
    await queue.sendMessage(Buffer.from(JSON.stringify({ tag: 'busy', sleepMs: SLEEP_MS })).toString('base64'));
    const first = await waitFor(
      async () => seen().find((s) => (s.payload as { tag?: string }).tag === 'busy'),
      'the first message',
      30_000,
    );
    // sent after the listener's poll at 3.1–3.7 s, as the test below sends its message with the SDK
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(first.at) + 3900 - Date.now())));
    const res = await fetch(`${host.url}/api/enqueue`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ tag: 'from-http' }] }),
    });
    expect(res.status).toBe(202);
    const sent = await waitFor(
      async () => seen().find((s) => (s.payload as { tag?: string }).tag === 'from-http'),
      'the message the HTTP function sent',
      30_000,
    );
    // run while the first one still sleeps, not at the poll 6.3 s after it was found
    expect(Date.parse(sent.at) - Date.parse(first.at)).toBeLessThan(5500);
  });

  it('finds a message sent with the storage SDK at the next poll: an invocation ending does not cut the back-off short', async () => {
    const queue = QueueServiceClient.fromConnectionString(azurite.connectionString).getQueueClient(QUEUE);
    await queue.sendMessage(Buffer.from(JSON.stringify({ tag: 'quiet', sleepMs: SLEEP_MS })).toString('base64'));
    const first = await waitFor(
      async () => seen().find((s) => (s.payload as { tag?: string }).tag === 'quiet'),
      'the first message',
      30_000,
    );
    // sent while the first one still runs (4.5 s), after the listener's poll at 3.1–3.7 s: as a step sends its
    // next message with the SDK just before it ends
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(first.at) + 3900 - Date.now())));
    await queue.sendMessage(Buffer.from(JSON.stringify({ tag: 'late' })).toString('base64'));
    const late = await waitFor(
      async () => seen().find((s) => (s.payload as { tag?: string }).tag === 'late'),
      'the message sent after it',
      30_000,
    );
    // found by the poll 6.3 s (at the earliest) after the first message was found, not when the first one ended
    expect(Date.parse(late.at) - Date.parse(first.at)).toBeGreaterThanOrEqual(5500);
  });
});
