/**
 * Storage-queue triggers with the Functions queue extension's semantics:
 *
 * - polls with `receiveMessages(batchSize, visibilityTimeout = lease)`; fetches the next batch when
 *   `newBatchThreshold` or fewer invocations are still running (so at most batchSize + newBatchThreshold
 *   run at once); an empty queue backs the polling off (100 ms doubling, with jitter) up to
 *   maxPollingInterval; after a batch it polls again at once. The back-off is ended early by nothing but a
 *   queue output binding of this host sending to the queue (`notify`, the extension's SharedQueueWatcher: see
 *   outputs.ts) — not by an invocation ending, nor by a message the function sent with the storage SDK
 *   (QueueListener.ExecuteAsync: CreateSucceededResult waits only for newBatchThreshold, CreateBackoffResult
 *   for the delay or Notify);
 * - decodes the message (base64 by default), passes the text to the library, which JSON-parses it when
 *   it can (a message `"123"` arrives as the number 123), and triggerMetadata
 *   `{ queueTrigger, id, dequeueCount, insertionTime, expirationTime, nextVisibleTime, popReceipt, sys }`;
 * - receives with a 10-minute visibility timeout and renews it at half while the function runs, as the
 *   queues extension's QueueListener does (`_visibilityTimeout = TimeSpan.FromMinutes(10)`,
 *   `CreateUpdateMessageVisibilityTimer`: "Update a message's visibility when it is halfway to expiring";
 *   azure-webjobs-sdk src/Microsoft.Azure.WebJobs.Extensions.Storage/Queues/Listeners/QueueListener.cs,
 *   now azure-sdk-for-net sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Queues): a message whose
 *   host died reappears only after that lease. LOCAL_HOST_QUEUE_LEASE_SECONDS shortens it for tests;
 * - runs the function in the worker process (worker-channel.ts): a timeout or a dead worker fails the
 *   invocation like a thrown error (QueueProcessor.CompleteProcessingMessageAsync: release or poison);
 * - success → queue outputs are sent, then the message is deleted;
 * - failure → when dequeueCount >= maxDequeueCount the message text is copied to `<queue>-poison` and
 *   deleted, else it becomes visible again after host.json visibilityTimeout;
 * - a message that arrives with dequeueCount > maxDequeueCount, or that is not valid base64 under the
 *   base64 encoding, goes to the poison queue without an invocation.
 *
 * One log line per invocation (function, message id, dequeueCount, duration, outcome). Message bodies
 * are never logged.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { DequeuedMessageItem, QueueClient } from '@azure/storage-queue';
import type { HostedFunction } from './catalog.js';
import type { RpcTypedData } from './core-api.js';
import { FunctionTimeoutError, WorkerExitError, type InFlight, type Invoker } from './invoke.js';
import { describeError, type HostLogger } from './log.js';
import { deliverOutputs, type OutputDeps } from './outputs.js';
import type { QueueOptions } from './settings.js';
import { decodeMessage } from './storage.js';

export interface QueueListenerOptions {
  /** Runs an invocation in the worker process. */
  readonly invoke: Invoker;
  readonly hosted: HostedFunction;
  readonly queueName: string;
  readonly queue: QueueClient;
  readonly poison: QueueClient;
  readonly options: QueueOptions;
  /** Visibility lease while an invocation runs, seconds (LOCAL_HOST_QUEUE_LEASE_SECONDS, default 600 as in Azure), renewed at half. */
  readonly leaseSeconds: number;
  readonly functionTimeoutMs: number | null;
  readonly logger: HostLogger;
  readonly inFlight: InFlight;
  readonly outputs: OutputDeps;
}

const MIN_POLL_MS = 100;

const json = (value: unknown): RpcTypedData => ({ json: JSON.stringify(value) });
const iso = (d: Date | undefined): string | undefined => (d ? d.toISOString() : undefined);

/** The trigger metadata the Functions host passes with a queue message (its binding data: `context.triggerMetadata`). */
function queueTriggerMetadata(m: DequeuedMessageItem, text: string, name: string): Record<string, RpcTypedData> {
  const now = new Date().toISOString();
  return {
    QueueTrigger: { string: text },
    DequeueCount: json(m.dequeueCount),
    Id: json(m.messageId),
    PopReceipt: json(m.popReceipt),
    InsertionTime: json(iso(m.insertedOn)),
    ExpirationTime: json(iso(m.expiresOn)),
    NextVisibleTime: json(iso(m.nextVisibleOn)),
    sys: json({ MethodName: name, UtcNow: now, RandGuid: randomUUID() }),
  };
}

/** Keeps one message invisible while its invocation runs. */
export class Lease {
  #popReceipt: string;
  #timer: NodeJS.Timeout | undefined;
  #pending: Promise<void> = Promise.resolve();
  #lost = false;

  constructor(
    private readonly queue: QueueClient,
    private readonly messageId: string,
    popReceipt: string,
    private readonly leaseSeconds: number,
    private readonly onLost: (reason: string) => void,
  ) {
    this.#popReceipt = popReceipt;
    const every = Math.max(250, Math.floor((leaseSeconds * 1000) / 2));
    this.#timer = setInterval(() => {
      this.#pending = this.#pending.then(() => this.renew());
    }, every);
  }

  private async renew(): Promise<void> {
    if (this.#lost || this.#timer === undefined) return;
    try {
      const r = await this.queue.updateMessage(this.messageId, this.#popReceipt, undefined, this.leaseSeconds);
      if (r.popReceipt) this.#popReceipt = r.popReceipt;
    } catch (err) {
      this.#lost = true;
      this.onLost(describeError(err));
    }
  }

  /** Stops renewing; resolves with the newest pop receipt once any renewal in flight is done. */
  async stop(): Promise<string> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#pending;
    return this.#popReceipt;
  }
}

export class QueueListener {
  readonly #o: QueueListenerOptions;
  readonly #running = new Set<Promise<void>>();
  #stopping = false;
  readonly #abort = new AbortController();
  /** Ends the back-off wait before the next poll: stop, or `notify`. */
  #wake: (() => void) | undefined;
  /** Ends the wait for an invocation to finish when more than newBatchThreshold run. */
  #slotFreed: (() => void) | undefined;
  #notified = false;
  #loop: Promise<void> | undefined;
  #pollErrorLogged = 0;

  constructor(options: QueueListenerOptions) {
    this.#o = options;
  }

  /** The queue this listener polls. */
  get queueName(): string {
    return this.#o.queueName;
  }

  start(): void {
    this.#loop = this.#run();
  }

  /**
   * A function of this host sent a message to this queue through an output binding: poll now rather than at the
   * end of the back-off (QueueListener.Notify in the queues extension).
   */
  notify(): void {
    this.#notified = true;
    this.#wake?.();
  }

  /** Stops polling; running invocations are left to the host's in-flight drain. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#abort.abort();
    this.#wake?.();
    this.#slotFreed?.();
    await this.#loop;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }

  async #run(): Promise<void> {
    const { options, queue, logger } = this.#o;
    let delay = MIN_POLL_MS;
    while (!this.#stopping) {
      if (this.#running.size > options.newBatchThreshold) {
        await Promise.race([
          ...this.#running,
          new Promise<void>((r) => {
            this.#slotFreed = r;
          }),
        ]);
        this.#slotFreed = undefined;
        continue;
      }
      let messages: DequeuedMessageItem[];
      try {
        const r = await queue.receiveMessages({
          numberOfMessages: options.batchSize,
          visibilityTimeout: this.#o.leaseSeconds,
          abortSignal: this.#abort.signal,
        });
        messages = r.receivedMessageItems;
        this.#pollErrorLogged = 0;
      } catch (err) {
        if (this.#stopping) break;
        // Log the first failure and then every 30th, to stay readable while storage is down.
        if (this.#pollErrorLogged++ % 30 === 0)
          logger.warn('queue', `polling '${this.#o.queueName}' failed: ${describeError(err)}`);
        await this.#sleep(options.maxPollingIntervalMs);
        continue;
      }
      if (this.#stopping) {
        // Received during shutdown: not invoked; made visible again at once (best effort).
        await Promise.allSettled(messages.map((m) => queue.updateMessage(m.messageId, m.popReceipt, undefined, 0)));
        break;
      }
      if (messages.length === 0) {
        if (!this.#notified) await this.#sleep(delay + Math.floor(Math.random() * delay * 0.2));
        delay = this.#notified ? MIN_POLL_MS : Math.min(delay * 2, options.maxPollingIntervalMs);
        this.#notified = false;
        continue;
      }
      delay = MIN_POLL_MS;
      this.#notified = false;
      for (const m of messages) {
        const p: Promise<void> = this.#o.inFlight.track(this.#process(m)).finally(() => {
          this.#running.delete(p);
          // Only the wait for a free slot ends here: an invocation that ends does not cut the back-off short
          // (QueueListener: only Notify ends CreateDelayWithNotificationTask's wait).
          this.#slotFreed?.();
        });
        this.#running.add(p);
      }
    }
  }

  async #toPoison(m: DequeuedMessageItem, popReceipt: string): Promise<void> {
    await this.#o.poison.sendMessage(m.messageText);
    await this.#o.queue.deleteMessage(m.messageId, popReceipt);
  }

  async #process(m: DequeuedMessageItem): Promise<void> {
    const { hosted, options, logger, queueName } = this.#o;
    const name = hosted.fn.name;
    const started = performance.now();
    const where = `queue=${queueName} messageId=${m.messageId} dequeueCount=${m.dequeueCount}`;
    const poisonName = `${queueName}-poison`;
    try {
      if (m.dequeueCount > options.maxDequeueCount) {
        await this.#toPoison(m, m.popReceipt);
        logger.warn(
          name,
          `Message has reached MaxDequeueCount of ${options.maxDequeueCount}. Moved to '${poisonName}' without invoking (${where})`,
        );
        return;
      }
      const decoded = decodeMessage(m.messageText, options.messageEncoding);
      if (!decoded.ok) {
        await this.#toPoison(m, m.popReceipt);
        logger.warn(
          name,
          `Message is not valid base64 (host.json messageEncoding is base64). Moved to '${poisonName}' without invoking (${where})`,
        );
        return;
      }
      const triggerMetadata = queueTriggerMetadata(m, decoded.text, name);
      const lease = new Lease(this.#o.queue, m.messageId, m.popReceipt, this.#o.leaseSeconds, (reason) => {
        logger.warn(name, `could not renew the lease of ${where}: ${reason} — the message may be delivered again`);
      });
      const invocationId = randomUUID();
      let outcome: 'Succeeded' | 'Failed' = 'Succeeded';
      let failure: unknown;
      try {
        const { response } = await this.#o.invoke(
          hosted.fn.name,
          { trigger: { string: decoded.text }, triggerMetadata, invocationId },
          this.#o.functionTimeoutMs,
        );
        await deliverOutputs(hosted, response, this.#o.outputs);
      } catch (err) {
        outcome = 'Failed';
        failure = err;
      }
      const popReceipt = await lease.stop();
      const ms = Math.round(performance.now() - started);
      if (outcome === 'Succeeded') {
        await this.#o.queue.deleteMessage(m.messageId, popReceipt);
        logger.info(name, `Executed 'Functions.${name}' (Succeeded, Id=${invocationId}, Duration=${ms}ms) ${where}`);
        return;
      }
      await this.#failed(m, popReceipt, failure, { invocationId, ms, where });
    } catch (err) {
      // Storage errors while completing/abandoning: the message reappears when its lease expires.
      logger.warn(
        name,
        `could not complete ${where}: ${describeError(err)} — it will be delivered again when its lease expires`,
      );
    }
  }

  /** A failed invocation: its error logged, the message poisoned at maxDequeueCount, else visible again after visibilityTimeout. */
  async #failed(
    m: DequeuedMessageItem,
    popReceipt: string,
    failure: unknown,
    run: { invocationId: string; ms: number; where: string },
  ): Promise<void> {
    const { hosted, options, logger, queueName } = this.#o;
    const name = hosted.fn.name;
    const { invocationId, ms, where } = run;
    if (failure instanceof FunctionTimeoutError || failure instanceof WorkerExitError)
      logger.error(name, `${failure.message} (Id=${invocationId})`);
    else
      logger.error(
        name,
        `Exception while executing function: Functions.${name}: ${failure instanceof Error && failure.stack ? failure.stack : describeError(failure)}`,
      );
    if (m.dequeueCount >= options.maxDequeueCount) {
      await this.#toPoison(m, popReceipt);
      logger.warn(
        name,
        `Executed 'Functions.${name}' (Failed, Id=${invocationId}, Duration=${ms}ms) ${where}; reached MaxDequeueCount of ${options.maxDequeueCount}, moved to '${queueName}-poison'`,
      );
    } else {
      await this.#o.queue.updateMessage(
        m.messageId,
        popReceipt,
        undefined,
        Math.round(options.visibilityTimeoutMs / 1000),
      );
      logger.warn(
        name,
        `Executed 'Functions.${name}' (Failed, Id=${invocationId}, Duration=${ms}ms) ${where}; visible again in ${options.visibilityTimeoutMs / 1000}s`,
      );
    }
  }
}
