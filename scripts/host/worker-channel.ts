/**
 * The host's side of the worker process (worker.ts): start it, learn its functions, send invocations,
 * enforce `functionTimeout`, and restart it when it dies — with the Functions host's semantics
 * (Azure/azure-functions-host, paths below are in that repository):
 *
 * - Timeout. The invocation that outlived `functionTimeout` fails at once with "Timeout value of
 *   hh:mm:ss was exceeded by function: Functions.<name>" (azure-webjobs-sdk `FunctionExecutor.
 *   TryHandleTimeoutAsync`), and the worker process that ran it is killed and restarted
 *   (`src/WebJobs.Script.WebHost/WebScriptHostExceptionHandler.cs` `OnTimeoutExceptionAsync` →
 *   `RpcFunctionInvocationDispatcher.RestartWorkerWithInvocationIdAsync`). The other invocations that
 *   were running in that process are NOT failed then: the restart disposes the channel without an
 *   exception (`ShutdownChannelIfExistsAsync(workerId, null)` → `TryFailExecutions(null)` does nothing,
 *   `GrpcWorkerChannel.Dispose` drops them), so each one fails when its own `functionTimeout` expires.
 *   Here likewise: they are orphaned and fail at their own deadline.
 * - Crash (an uncaught exception or unhandled rejection in the worker, an OOM, a kill). Every invocation
 *   in flight fails at once with the worker's error (`WorkerErrorEvent` → `DisposeAndRestartWorkerChannel`
 *   → `TryFailExecutions(workerException)`), and a new worker process is started.
 * - Failed invocations then take the trigger's normal failure path (queue: visible again after
 *   host.json `visibilityTimeout`, `<queue>-poison` at `maxDequeueCount`; HTTP: an empty 500).
 * - Restart budget. Azure counts worker errors (crashes, not timeouts) within 30 minutes
 *   (`WorkerConstants.WorkerRestartErrorIntervalThresholdInMinutes`); at 3 (`ErrorEventsThreshold` =
 *   3 × process count) it stops restarting the worker and recycles the whole host ("Exceeded language
 *   worker restart retry count … Shutting down and proactively recycling the Functions Host"), after which
 *   the platform starts a new host. The local host logs the same event and restarts the worker (its HTTP
 *   front and listeners stay up, as the new host's would).
 * - New invocations wait while the worker restarts (dispatcher state `WorkerProcessRestarting`); that wait
 *   counts against their `functionTimeout`, as the FunctionExecutor's timer starts before dispatch.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { FunctionInfo } from './core-api.js';
import {
  FunctionTimeoutError,
  formatMs,
  WorkerExitError,
  WorkerInvocationError,
  type InvocationInput,
  type InvocationResult,
} from './invoke.js';
import { describeError, type HostLogger } from './log.js';
import type { HostToWorker, InitMessage, WorkerToHost } from './protocol.js';
import { HostConfigError } from './settings.js';

/** Worker start-up (module loading, appStart hooks) must finish within this (Azure: 60 s, not configurable). */
const DEFAULT_START_TIMEOUT_MS = 60_000;
/** `WorkerConstants.WorkerRestartErrorIntervalThresholdInMinutes`. */
const ERROR_WINDOW_MS = 30 * 60_000;
/** `ErrorEventsThreshold` = 3 × FUNCTIONS_WORKER_PROCESS_COUNT (1). */
const ERROR_THRESHOLD = 3;
/** The worker's WorkerTerminate grace (`WorkerConstants.WorkerTerminateGracePeriodInSeconds`). */
const TERMINATE_GRACE_MS = 5_000;

interface Pending {
  readonly functionName: string;
  readonly resolve: (r: InvocationResult) => void;
  readonly reject: (err: unknown) => void;
  readonly invocationId: string;
  timer: NodeJS.Timeout | undefined;
  /** Resolved or rejected already (e.g. timed out while waiting for a restarting worker). */
  done: boolean;
}

interface Worker {
  readonly child: ChildProcess;
  readonly pending: Map<string, Pending>;
  /** Resolves when the worker indexed its functions. */
  readonly ready: Promise<readonly FunctionInfo[]>;
  /** Set when the host killed it (timeout, shutdown): its exit is expected. */
  killedBy?: string;
  indexed: boolean;
  exited: boolean;
}

/** A worker's start-up: its timeout, and how to settle its `ready`. */
interface StartUp {
  readonly timer: NodeJS.Timeout;
  indexed(functions: readonly FunctionInfo[]): void;
  failed(err: Error): void;
}

export interface WorkerChannelOptions {
  /** worker.ts (or worker.js when built). */
  readonly workerPath: string;
  /** Node flags for the worker (the host's own, e.g. `--import tsx` when run from source). */
  readonly execArgv: readonly string[];
  readonly init: InitMessage;
  readonly logger: HostLogger;
  readonly startTimeoutMs?: number;
  /** Called when a restarted worker cannot start: the host cannot go on. */
  readonly onFatal: (reason: string) => void;
}

export class WorkerChannel {
  readonly #o: WorkerChannelOptions;
  #worker: Worker | undefined;
  #functions: readonly FunctionInfo[] = [];
  readonly #errors: number[] = [];
  #restarts = 0;
  #stopping = false;

  constructor(options: WorkerChannelOptions) {
    this.#o = options;
  }

  /** Process id of the current worker (tests and /admin/host/status). */
  get pid(): number | undefined {
    return this.#worker?.child.pid;
  }

  get restarts(): number {
    return this.#restarts;
  }

  /** Invocations whose result is still awaited from the current worker. */
  get running(): number {
    return this.#worker?.pending.size ?? 0;
  }

  /** Starts the first worker and returns the functions it registered. Throws HostConfigError when it cannot start. */
  async start(): Promise<readonly FunctionInfo[]> {
    const worker = this.#spawn();
    this.#worker = worker;
    try {
      this.#functions = await worker.ready;
    } catch (err) {
      this.#kill(worker, 'start-up failed');
      throw err instanceof HostConfigError ? err : new HostConfigError(describeError(err));
    }
    this.#o.logger.info('host', `worker process started (pid ${String(worker.child.pid)})`);
    return this.#functions;
  }

  /**
   * Runs `functionName` in the worker. Rejects with what the handler threw (a WorkerInvocationError carrying
   * its stack), a FunctionTimeoutError after `timeoutMs`, or a WorkerExitError when the worker died first.
   */
  invoke(functionName: string, input: InvocationInput, timeoutMs: number | null): Promise<InvocationResult> {
    const id = randomUUID();
    const invocationId = input.invocationId ?? id;
    return new Promise<InvocationResult>((resolve, reject) => {
      const pending: Pending = {
        functionName,
        invocationId,
        timer: undefined,
        done: false,
        resolve: (r) => {
          this.#settle(pending);
          resolve(r);
        },
        reject: (e) => {
          this.#settle(pending);
          reject(e);
        },
      };
      if (timeoutMs !== null) pending.timer = setTimeout(() => this.#onTimeout(id, pending, timeoutMs), timeoutMs);
      void this.#dispatch(id, pending, { ...input, invocationId });
    });
  }

  async #dispatch(id: string, pending: Pending, input: InvocationInput): Promise<void> {
    // Wait for a ready worker (one may be restarting after a crash or a timeout).
    let worker: Worker | undefined;
    for (;;) {
      worker = this.#worker;
      if (pending.done) return;
      if (!worker || this.#stopping) {
        pending.reject(new WorkerExitError('the host is stopping: no worker process to run the invocation'));
        return;
      }
      try {
        await worker.ready;
      } catch {
        if (worker === this.#worker) {
          pending.reject(new WorkerExitError('the worker process could not be started'));
          return;
        }
        continue; // replaced meanwhile: wait for the new one
      }
      if (!worker.exited && worker === this.#worker) break;
      await new Promise((r) => setImmediate(r));
    }
    if (pending.done) return;
    worker.pending.set(id, pending);
    try {
      worker.child.send({ type: 'invoke', id, functionName: pending.functionName, input } satisfies HostToWorker);
    } catch (err) {
      worker.pending.delete(id);
      pending.reject(new WorkerExitError(`could not send the invocation to the worker: ${describeError(err)}`));
    }
  }

  #settle(pending: Pending): void {
    pending.done = true;
    clearTimeout(pending.timer);
    pending.timer = undefined;
  }

  #onTimeout(id: string, pending: Pending, timeoutMs: number): void {
    if (pending.done) return;
    pending.reject(
      new FunctionTimeoutError(
        `Timeout value of ${formatMs(timeoutMs)} was exceeded by function: Functions.${pending.functionName}`,
      ),
    );
    const worker = this.#worker;
    // Not (or no longer) in the current worker: dispatched to none yet, or orphaned by an earlier restart.
    if (!worker || !worker.pending.delete(id)) return;
    const orphans = [...worker.pending.values()];
    worker.pending.clear();
    this.#o.logger.warn(
      'host',
      `A function timeout has occurred. Restarting worker process executing invocationId '${pending.invocationId}' (pid ${String(worker.child.pid)}); ${orphans.length} other invocation(s) in it get no result and fail at their own timeout.`,
    );
    // The orphans keep their own timers (every invocation has the same functionTimeout): see the file comment.
    this.#kill(worker, `timeout of invocation ${pending.invocationId}`);
    this.#restart();
  }

  #spawn(): Worker {
    const child = fork(this.#o.workerPath, [], {
      execArgv: [...this.#o.execArgv],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: process.env,
    });
    let onIndexed: (f: readonly FunctionInfo[]) => void = () => undefined;
    let onInitFailed: (e: Error) => void = () => undefined;
    const ready = new Promise<readonly FunctionInfo[]>((resolve, reject) => {
      onIndexed = resolve;
      onInitFailed = reject;
    });
    ready.catch(() => undefined);
    const worker: Worker = { child, pending: new Map(), ready, indexed: false, exited: false };
    const startTimer = setTimeout(() => {
      onInitFailed(
        new HostConfigError(
          `the worker process did not index the functions within ${(this.#o.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS) / 1000}s`,
        ),
      );
      this.#kill(worker, 'start-up timeout');
    }, this.#o.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
    const startUp: StartUp = { timer: startTimer, indexed: onIndexed, failed: onInitFailed };

    child.on('message', (raw: unknown) => this.#onMessage(worker, raw as WorkerToHost, startUp));
    child.on('error', (err) => {
      this.#o.logger.error('host', `worker process error: ${describeError(err)}`);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(startTimer);
      worker.exited = true;
      onInitFailed(
        new HostConfigError(`the worker process exited during start-up (${signal ?? `code ${String(code)}`})`),
      );
      const how = signal ? `was killed by ${signal}` : `exited with code ${String(code)}`;
      if (worker.killedBy !== undefined) {
        this.#o.logger.info('host', `worker process ${String(child.pid)} ${how} (${worker.killedBy})`);
        return;
      }
      if (!worker.indexed) return; // start-up failure: reported through `ready`
      this.#crashed(worker, how);
    });
    child.send({ ...this.#o.init } satisfies HostToWorker);
    return worker;
  }

  /** A message of the worker: the end of its start-up, or the answer to an invocation. */
  #onMessage(worker: Worker, m: WorkerToHost, startUp: StartUp): void {
    switch (m.type) {
      case 'indexed':
        clearTimeout(startUp.timer);
        if (m.httpStreamRequested) {
          startUp.failed(
            new HostConfigError(
              'the app enables HTTP streaming (app.setup({ enableHttpStream: true })), which the local host does not support',
            ),
          );
        } else {
          worker.indexed = true;
          startUp.indexed(m.functions);
        }
        break;
      case 'initFailed':
        clearTimeout(startUp.timer);
        startUp.failed(new HostConfigError(m.message));
        break;
      case 'result':
      case 'failed': {
        const p = worker.pending.get(m.id);
        if (!p) return; // timed out meanwhile
        worker.pending.delete(m.id);
        if (m.type === 'result') p.resolve({ invocationId: p.invocationId, response: m.response });
        else p.reject(new WorkerInvocationError(m.error));
        break;
      }
      default:
        break;
    }
  }

  /** A crash: every invocation in flight fails now (TryFailExecutions(workerException)), and the current worker restarts. */
  #crashed(worker: Worker, how: string): void {
    const error = new WorkerExitError(`the worker process ${String(worker.child.pid)} ${how} while the invocation ran`);
    const failed = [...worker.pending.values()];
    worker.pending.clear();
    for (const p of failed) p.reject(error);
    if (this.#stopping || worker !== this.#worker) return;
    this.#o.logger.error(
      'host',
      `worker process ${String(worker.child.pid)} ${how}; ${failed.length} invocation(s) in flight failed; restarting it`,
    );
    this.#countError();
    this.#restart();
  }

  #countError(): void {
    const now = Date.now();
    while (this.#errors.length > 0 && now - this.#errors[0]! > ERROR_WINDOW_MS) this.#errors.shift();
    this.#errors.push(now);
    if (this.#errors.length >= ERROR_THRESHOLD) {
      this.#o.logger.error(
        'host',
        `Exceeded language worker restart retry count for runtime:node (${ERROR_THRESHOLD} worker errors within ${ERROR_WINDOW_MS / 60_000} minutes). In Azure the whole Functions host is recycled now; the local host restarts the worker and keeps serving.`,
      );
      this.#errors.length = 0;
    }
  }

  #kill(worker: Worker, reason: string): void {
    if (worker.exited) return;
    worker.killedBy ??= reason;
    worker.child.kill('SIGKILL');
  }

  #restart(): void {
    if (this.#stopping) return;
    this.#restarts++;
    const worker = this.#spawn();
    this.#worker = worker;
    worker.ready
      .then((functions) => {
        const before = this.#functions
          .map((f) => f.name)
          .sort()
          .join(',');
        const after = functions
          .map((f) => f.name)
          .sort()
          .join(',');
        if (before !== after)
          throw new HostConfigError(
            `the restarted worker registered other functions (${after}) than at start-up (${before})`,
          );
        this.#o.logger.info('host', `worker process restarted (pid ${String(worker.child.pid)})`);
      })
      .catch((err: unknown) => {
        if (this.#stopping || worker !== this.#worker) return;
        this.#o.onFatal(`the worker process could not be restarted: ${describeError(err)}`);
      });
  }

  /**
   * Stops the worker: `terminate` (appTerminate hooks run, then it exits), SIGKILL after the grace.
   * Invocations still in flight are abandoned (the caller drained what it wanted to wait for).
   */
  async stop(graceMs = TERMINATE_GRACE_MS): Promise<void> {
    this.#stopping = true;
    const worker = this.#worker;
    if (!worker || worker.exited) return;
    const exited = new Promise<void>((resolve) => worker.child.once('exit', () => resolve()));
    worker.killedBy = 'host stopping';
    try {
      worker.child.send({ type: 'terminate' } satisfies HostToWorker);
    } catch {
      worker.child.kill('SIGKILL');
    }
    const timer = setTimeout(() => worker.child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
