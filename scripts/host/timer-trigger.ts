/**
 * Timer triggers: NCRONTAB (UTC) or TimeSpan schedules. Like the Functions host, the next occurrence is
 * computed after an invocation finishes, so invocations of one timer never overlap; `runOnStartup`
 * fires once at start. The handler gets `{ isPastDue, schedule: { adjustForDST }, scheduleStatus:
 * { last, next, lastUpdated } }` (schedule status kept in memory, not in blob storage as in Azure).
 * A function-level retry policy (`retry: { strategy, maxRetryCount, delayInterval, ... }`) is honoured.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { HostedFunction } from './catalog.js';
import type { RpcDuration, RpcInvocationRequest } from './core-api.js';
import { FunctionTimeoutError, WorkerExitError, type InFlight, type Invoker } from './invoke.js';
import { describeError, type HostLogger } from './log.js';
import { deliverOutputs, type OutputDeps } from './outputs.js';
import type { Schedule } from './ncrontab.js';

export interface TimerListenerOptions {
  /** Runs an invocation in the worker process. */
  readonly invoke: Invoker;
  readonly hosted: HostedFunction;
  readonly schedule: Schedule;
  readonly runOnStartup: boolean;
  readonly functionTimeoutMs: number | null;
  readonly logger: HostLogger;
  readonly inFlight: InFlight;
  readonly outputs: OutputDeps;
}

/** .NET DateTime.MinValue, what the host reports as `last` before the first occurrence. */
const NEVER = '0001-01-01T00:00:00.000Z';
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

type RetryOptions = NonNullable<HostedFunction['fn']['metadata']['retryOptions']>;

/** The wait before retry `attempt + 1` of a function's retry policy: fixed delay, or exponential between its bounds. */
function retryDelayMs(retry: RetryOptions, attempt: number): number {
  const strategy = String(retry.strategy ?? retry.retryStrategy ?? '').toLowerCase();
  return strategy.startsWith('exponential')
    ? Math.min(
        durationMs(retry.maximumInterval) || Infinity,
        Math.max(durationMs(retry.minimumInterval), durationMs(retry.minimumInterval) * 2 ** attempt),
      )
    : durationMs(retry.delayInterval);
}

/** A failed invocation's log lines, as the Functions host writes them. */
function logFailure(
  logger: HostLogger,
  name: string,
  err: unknown,
  o: { invocationId: string; ms: number; startup: boolean; attempt: number },
): void {
  if (err instanceof FunctionTimeoutError || err instanceof WorkerExitError)
    logger.error(name, `${err.message} (Id=${o.invocationId})`);
  else
    logger.error(
      name,
      `Exception while executing function: Functions.${name}: ${err instanceof Error && err.stack ? err.stack : describeError(err)}`,
    );
  logger.warn(
    name,
    `Executed 'Functions.${name}' (Failed, Id=${o.invocationId}, Duration=${o.ms}ms) reason=${o.startup ? 'runOnStartup' : 'timer'}${o.attempt > 0 ? ` retry=${o.attempt}` : ''}`,
  );
}

function durationMs(d: RpcDuration | null | undefined): number {
  if (!d) return 0;
  return Number(d.seconds ?? 0) * 1000 + Math.floor(Number(d.nanos ?? 0) / 1e6);
}

export class TimerListener {
  readonly #o: TimerListenerOptions;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #last: string = NEVER;

  constructor(options: TimerListenerOptions) {
    this.#o = options;
  }

  /** The next occurrence after now (for the banner). */
  nextOccurrence(): Date | null {
    return this.#o.schedule.next(new Date());
  }

  start(): void {
    if (this.#o.runOnStartup) {
      void this.#fire(new Date(), true).then(() => this.#scheduleNext());
    } else {
      this.#scheduleNext();
    }
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #scheduleNext(): void {
    if (this.#stopped) return;
    const next = this.#o.schedule.next(new Date());
    if (!next) {
      this.#o.logger.warn(
        this.#o.hosted.fn.name,
        `schedule '${this.#o.schedule.expression}' has no further occurrence; the timer stops`,
      );
      return;
    }
    this.#arm(next);
  }

  #arm(at: Date): void {
    if (this.#stopped) return;
    const wait = at.getTime() - Date.now();
    if (wait > MAX_TIMEOUT_MS) {
      this.#timer = setTimeout(() => this.#arm(at), MAX_TIMEOUT_MS);
      return;
    }
    this.#timer = setTimeout(
      () => {
        void this.#fire(at, false).then(() => this.#scheduleNext());
      },
      Math.max(0, wait),
    );
  }

  async #fire(scheduledFor: Date, startup: boolean): Promise<void> {
    if (this.#stopped) return;
    const { hosted, logger } = this.#o;
    const name = hosted.fn.name;
    const next = this.#o.schedule.next(startup ? new Date() : scheduledFor);
    const timerInfo = {
      Schedule: { AdjustForDST: false },
      ScheduleStatus: {
        Last: this.#last,
        Next: next ? next.toISOString() : NEVER,
        LastUpdated: new Date().toISOString(),
      },
      IsPastDue: false,
    };
    if (!startup) this.#last = scheduledFor.toISOString();

    const retry = hosted.fn.metadata.retryOptions;
    const maxRetryCount = retry?.maxRetryCount ?? 0;
    let retryContext: RpcInvocationRequest['retryContext'];
    for (let attempt = 0; ; attempt++) {
      if (this.#stopped) return;
      const started = performance.now();
      const invocationId = randomUUID();
      try {
        const { response } = await this.#o.inFlight.track(
          this.#o.invoke(
            hosted.fn.name,
            {
              trigger: { json: JSON.stringify(timerInfo) },
              invocationId,
              ...(retryContext ? { retryContext } : {}),
            },
            this.#o.functionTimeoutMs,
          ),
        );
        await deliverOutputs(hosted, response, this.#o.outputs);
        const ms = Math.round(performance.now() - started);
        logger.info(
          name,
          `Executed 'Functions.${name}' (Succeeded, Id=${invocationId}, Duration=${ms}ms) reason=${startup ? 'runOnStartup' : 'timer'}${attempt > 0 ? ` retry=${attempt}` : ''}`,
        );
        return;
      } catch (err) {
        logFailure(logger, name, err, { invocationId, ms: Math.round(performance.now() - started), startup, attempt });
        const unlimited = maxRetryCount === -1;
        if (!retry || (!unlimited && attempt >= maxRetryCount)) return; // timers do not retry without a policy
        const delay = retryDelayMs(retry, attempt);
        retryContext = {
          retryCount: attempt + 1,
          maxRetryCount,
          exception:
            err instanceof Error
              ? { message: err.message, source: err.name, stackTrace: err.stack ?? '' }
              : { message: String(err) },
        };
        await new Promise<void>((resolve) => {
          this.#timer = setTimeout(resolve, delay);
        });
      }
    }
  }
}
