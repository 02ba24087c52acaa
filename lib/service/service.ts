/**
 * The import service behind the functions: accept a request (create the job, enqueue its first step),
 * report a job's status, and run ONE bounded step per queue message (lib/service/steps.ts).
 *
 * Every step runs under a budget: it stops starting work after STEP_BUDGET_SECONDS, and an AbortSignal
 * ends whatever is still in flight 30 s later (a request, a retry wait, a checkpoint), so a step ends
 * in bounded time whatever a source does. What a step's failure means is decided here, once:
 * - a `Retry-After` longer than the step can wait: the step is re-enqueued with that delay (status
 *   `waiting`), or, beyond MAX_RETRY_AFTER_SECONDS, the job fails with RATE_LIMITED naming the time;
 * - a permanent failure fails the job with its code and message (in ACR's words for Azure registries);
 * - so does an error nobody classified (a bug's TypeError: code INTERNAL, lib/errors.ts `isTemporary`): at once,
 *   not after maxDequeueCount deliveries of the same bug;
 * - a temporary one is thrown for the host to retry, and fails the job on the last delivery.
 * A queued request (not a step) whose acceptance fails with an unclassified error is thrown, so the host gives it
 * up after maxDequeueCount deliveries to the poison queue (lib/service/poison.ts records it; no job exists yet).
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { ImportStatusView } from '../api/status-view.js';
import type { Config, MessageKeys } from '../config.js';
import { ImportError } from '../engine/errors.js';
import { PartPool } from '../engine/part-reader.js';
import { SERVICE_YOUNG_GC_EVERY_BYTES } from '../engine/young-gc.js';
import {
  RateLimitedError,
  TimeoutError,
  errorCode,
  errorMessage,
  formatDuration,
  isTemporary,
  type ErrorCode,
} from '../errors.js';
import type { Credentials } from '../oci/auth.js';
import { parseReference } from '../oci/reference.js';
import type { Lookup } from '../policy/sources.js';
import { Registries, type SideClient, type SourceCredentials } from '../sides/registries.js';
import { deadlineSignal } from '../retry.js';
import { cancelJob, type CancelOutcome } from './cancel.js';
import type { ListQuery } from '../store/listing.js';
import { handlePoison, messageLength, rejectionRecord, type PoisonMeta } from './poison.js';
import { telemetry, withSpan, withTraceId } from '../telemetry/index.js';
import {
  SigningQueue,
  readStep,
  requireMessageKeys,
  type JobQueue,
  type StepMessage,
  type StepShape,
} from '../store/queue.js';
import { submitRepeatable, type RepeatabilityHeaders, type RepeatResult } from './repeatability.js';
import { RequestError, validateImportRequest } from '../request/request.js';
import { open, seal } from '../store/secrets.js';
import { stepMismatch, StepRefusedError } from './step-checks.js';
import { INLINE_MAX_BLOBS, Steps, type StepContext } from './steps.js';
import { progressOf, type JobStore } from '../store/store.js';
import { ENDED, type JobCaller, type JobRecord, type Logger } from '../store/types.js';

export type { Logger } from '../store/types.js';

export interface ServiceOptions {
  readonly config: Config;
  readonly store: JobStore;
  readonly queue: JobQueue;
  readonly lookup?: Lookup;
  /** Registry clients (tests shorten retries and deadlines); by default built from the config. */
  readonly registries?: Registries;
  /** Lease of a blob step beyond its budget. @default 30 000 ms */
  readonly leaseMarginMs?: number;
  /** Least time between two checkpoints of a running blob step. @default CHECKPOINT_EVERY_MS (steps.ts) */
  readonly checkpointEveryMs?: number;
  /** How long in-flight work may run past a step's budget before the step's signal ends it. @default 30 000 ms */
  readonly stepMarginMs?: number;
  /**
   * How long the host keeps a running queue message invisible: a step whose worker died comes back only after
   * it. @default 600 000 ms (the queues extension's fixed 10 minutes)
   */
  readonly queueLeaseMs?: number;
  /** Imports up to this size are copied in their plan step; false: always one step per blob. @default INLINE_MAX_BLOBS and INLINE_IMPORT_BYTES */
  readonly inline?: { readonly blobs: number; readonly bytes: number } | false;
}

/** A job as GET /imports/{id} shows it: the status view defined in lib/api/status-view.ts. */
export type JobStatusView = ImportStatusView;

export interface MessageMeta {
  readonly dequeueCount: number;
  readonly maxDequeueCount: number;
  readonly log: Logger;
  /**
   * Takes the messages that continue this step (StepContext.next), and the plan step of a request dropped on the
   * queue, signed: for the queue trigger's output binding,
   * which the Functions host sends once the invocation has succeeded and which wakes the host's own listener of the
   * queue at once, where a message sent with the storage SDK waits for the listener's next poll. Without it, they are
   * sent to the queue as the step makes them.
   */
  readonly handOff?: (message: StepMessage) => void;
}

/** In-flight work of a step may run this long past its budget before the step's signal ends it. */
export const STEP_MARGIN_MS = 30_000;

/** The queues extension receives with a 10-minute visibility timeout, renewed at half while the function runs
 * (azure-webjobs-sdk QueueListener `_visibilityTimeout`): after a lost worker, the message reappears after that. */
export const DEFAULT_QUEUE_LEASE_MS = 600_000;

/** Longest error message a job record keeps (registries write what they like into theirs). */
const MAX_ERROR_MESSAGE = 2000;

function bounded(message: string): string {
  return message.length > MAX_ERROR_MESSAGE ? `${message.slice(0, MAX_ERROR_MESSAGE - 1)}…` : message;
}

/**
 * The pool of ranged-GET parts of every step this process runs at once (each step has its own engine): memory stays
 * bounded by FETCH_CONCURRENCY and COPY_MEMORY, not by the host's batch size, and young garbage is collected every
 * SERVICE_YOUNG_GC_EVERY_BYTES (young-gc.ts says why the worker's interval is not the CLI's).
 */
export function workerPartPool(config: Config): PartPool {
  return new PartPool(2 * config.fetchConcurrency, config.copyMemory, {
    youngGcEveryBytes: SERVICE_YOUNG_GC_EVERY_BYTES,
    // no full collections of the CLI's kind: the worker's heap holds the Functions runtime and the storage SDKs (a full
    // collection there pauses every step in the process), and they showed no gain there. The instance scenario of
    // `npm run bench` with them after 8 MiB, one run each way (2026-12-05): worker peak RSS 163 / 205 / 207 MB (small,
    // single, index) against 164 / 209 / 187 MB without.
    fullGcAfterBytes: null,
  });
}

export class ImportService {
  readonly registries: Registries;
  private readonly steps: Steps;
  /** The queue as the service writes it: every step message signed with MESSAGE_KEY. */
  private readonly queue: JobQueue;

  constructor(private readonly o: ServiceOptions) {
    this.registries = o.registries ?? new Registries({ config: o.config, guardSources: true, lookup: o.lookup });
    this.queue = new SigningQueue(o.queue, () => requireMessageKeys(o.config.messageKeys));
    this.steps = new Steps({
      config: o.config,
      store: o.store,
      queue: this.queue,
      registries: this.registries,
      sides: (job) => this.sides(job),
      partPool: workerPartPool(o.config),
      owner: randomUUID(),
      leaseMarginMs: o.leaseMarginMs ?? STEP_MARGIN_MS,
      checkpointEveryMs: o.checkpointEveryMs,
      lookup: o.lookup,
      inline:
        o.inline ??
        (o.config.inlineImportBytes > 0 ? { blobs: INLINE_MAX_BLOBS, bytes: o.config.inlineImportBytes } : false),
    });
  }

  // ---- accept ------------------------------------------------------------------------------------

  /**
   * Validates, creates the job and enqueues its plan step. Throws RequestError for bad input. `id`: the job's id
   * chosen by the caller (a repeatable request); a job with that id existing already throws JOB_EXISTS. `handOff`:
   * the plan step's message, signed, goes to the function's queue output binding instead of the storage SDK (see
   * MessageMeta.handOff): the host sends it as the invocation ends, and its own queue listener polls for it at once.
   */
  async submit(
    body: unknown,
    origin: 'http' | 'queue',
    options: {
      readonly id?: string;
      readonly caller?: JobCaller;
      readonly handOff?: (message: StepMessage) => void;
    } = {},
  ): Promise<JobRecord> {
    this.messageKeys();
    const req = await validateImportRequest(body, { config: this.o.config, origin, lookup: this.o.lookup });
    const id = options.id ?? randomUUID();
    const now = new Date();
    const job: JobRecord = {
      id,
      status: 'queued',
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + this.o.config.maxJobHours * 3_600_000).toISOString(),
      request: {
        source: req.source,
        target: req.target,
        images: req.images,
        repository: req.repository,
        force: req.force,
        platforms: req.platforms,
        credential: req.credential,
        inlineCredentials: req.inlineCredentials !== undefined,
        ...(req.includeReferrers ? { includeReferrers: true, referrerTypes: req.referrerTypes } : {}),
        ...(req.registryResourceId ? { registryResourceId: req.registryResourceId } : {}),
      },
      ...(options.caller && (options.caller.oid || options.caller.appid) ? { caller: { ...options.caller } } : {}),
      targets: req.targets,
      repositories: [...new Set(req.refs.map((r) => r.repository))],
      blobsTotal: 0,
      bytesTotal: 0,
      manifests: 0,
      blobBytes: {},
      doneBlobs: [],
    };
    const secret = req.inlineCredentials ? seal(this.o.config.credentialKey!, id, req.inlineCredentials) : undefined;
    await this.o.store.create(job, secret);
    await (options.handOff ? this.handOffQueue(options.handOff) : this.queue).send({ v: 1, job: id, step: 'plan' });
    return job;
  }

  /** MESSAGE_KEY (and the previous one), or a 503 saying the deployment lacks it: nothing is queued or listed without. */
  private messageKeys(): MessageKeys {
    const keys = this.o.config.messageKeys;
    if (!keys) {
      throw new RequestError(
        503,
        'MESSAGE_KEY_NOT_SET',
        'this deployment has no MESSAGE_KEY to authenticate its queue messages and list tokens with: an operator must set it (base64 of 32 random bytes; the Bicep template makes it in Key Vault)',
      );
    }
    return keys;
  }

  /** `submit` for a request with Repeatability-Request-ID: the same id and body give the same job (repeatability.ts). */
  submitRepeatable(
    body: unknown,
    headers: RepeatabilityHeaders,
    caller?: JobCaller,
    handOff?: (message: StepMessage) => void,
  ): Promise<RepeatResult> {
    return submitRepeatable(
      {
        store: this.o.store,
        queue: handOff ? this.handOffQueue(handOff) : this.queue,
        submit: (b, id) => this.submit(b, 'http', { id, caller, handOff }),
        credentialKey: () => this.o.config.credentialKey,
      },
      body,
      headers,
    );
  }

  async status(id: string): Promise<JobStatusView | undefined> {
    const job = await this.o.store.get(id);
    return job && this.view(job);
  }

  /** An import deleted by retention: when it ended (its tombstone), else undefined. */
  async expired(id: string): Promise<{ endedAt: string; status: string } | undefined> {
    const t = await this.o.store.tombstone(id);
    return t && { endedAt: t.endedAt, status: t.status };
  }

  /** One retention run (JOB_RETENTION_DAYS): ended imports older than it are deleted, with their index entries. */
  prune(now?: Date): ReturnType<JobStore['prune']> {
    return this.o.store.prune(this.o.config.jobRetentionDays, now);
  }

  /** A page of imports, newest first, as status views (see lib/store/listing.ts). */
  async list(query: ListQuery): Promise<{ value: JobStatusView[]; next?: string }> {
    const page = await this.o.store.list(query, this.messageKeys());
    return { value: page.jobs.map((j) => this.view(j)), ...(page.next ? { next: page.next } : {}) };
  }

  /** Ends the job as `canceled` unless it ended or is tagging already; its steps wind down (lib/service/cancel.ts). */
  cancel(id: string): Promise<CancelOutcome> {
    return cancelJob(this.o.store, id);
  }

  /** The record as callers see it: no request details beyond names, never a credential. */
  view(job: JobRecord): JobStatusView {
    return {
      id: job.id,
      status: job.status,
      source: job.request.source,
      targets: job.targets,
      createdAt: job.createdAt,
      updatedAt: job.updatedAt,
      progress: progressOf(job),
      ...(job.digest ? { digest: job.digest } : {}),
      ...(job.notes?.length ? { notes: job.notes } : {}),
      ...(job.referrers ? { referrers: job.referrers } : {}),
      ...(job.status === 'waiting' && job.waitingUntil ? { waitingUntil: job.waitingUntil } : {}),
      ...(job.error ? { error: job.error } : {}),
      ...(job.caller ? { caller: job.caller } : {}),
      ...(this.stalled(job) ? { stalled: true as const } : {}),
    };
  }

  /** See JobStatusView.stalled: a step lasts at most its budget plus the margin; a lost one returns after the queue lease. */
  private stalled(job: JobRecord, now = Date.now()): boolean {
    if (job.status !== 'queued' && job.status !== 'running') return false;
    const quietMs =
      (this.o.queueLeaseMs ?? DEFAULT_QUEUE_LEASE_MS) +
      this.o.config.stepBudgetSeconds * 1000 +
      (this.o.stepMarginMs ?? STEP_MARGIN_MS);
    return now - Date.parse(job.updatedAt) > quietMs;
  }

  /** A message of `<queue>-poison` (see lib/service/poison.ts). */
  handlePoison(raw: unknown, meta: PoisonMeta): Promise<void> {
    return handlePoison(this.o.store, requireMessageKeys(this.o.config.messageKeys), raw, meta);
  }

  // ---- work ----------------------------------------------------------------------------------------

  /**
   * Runs one step for a queue message: a step message the app wrote, or a request a user dropped on the queue.
   * A message shaped like a step that the app did not write (no tag, a wrong one, another job's), or one whose
   * step does not fit its job's stored plan, is refused before anything is read or sent: it goes to the poison
   * queue as a reason and a length, and its job stays exactly as it was.
   */
  async handleMessage(raw: unknown, meta: MessageMeta): Promise<void> {
    const read = readStep(requireMessageKeys(this.o.config.messageKeys), raw);
    if (read.kind === 'other') {
      await this.acceptDropped(raw, meta);
      return;
    }
    if (read.kind === 'refused') {
      await this.refuse(raw, read.shape, new StepRefusedError(read.code, read.why), meta);
      return;
    }
    const msg = read.message;
    // a span of the import's trace (lib/telemetry; nothing without it), its log lines with the trace id
    const started = Date.now();
    await withSpan(
      `import ${msg.step}`,
      {
        parent: msg.tp,
        kind: 'consumer',
        attributes: {
          'oci_import.id': msg.job,
          'oci_import.step': msg.step,
          'oci_import.blob': msg.step === 'blob' ? msg.blob : undefined,
        },
      },
      async () => {
        const t = telemetry();
        if (msg.at !== undefined) t.record('queue.wait', Math.max(0, started - msg.at), { step: msg.step });
        let outcome = 'error';
        try {
          await this.runStep(
            raw,
            msg,
            !t.enabled
              ? meta
              : {
                  ...meta,
                  log: {
                    info: (m) => meta.log.info(withTraceId(m)),
                    warn: (m) => meta.log.warn(withTraceId(m)),
                    error: (m) => meta.log.error(withTraceId(m)),
                  },
                },
          );
          outcome = 'ok';
        } finally {
          t.record('step.duration', Date.now() - started, { step: msg.step, outcome });
        }
      },
    );
  }

  /** An authentic step message: checked against its job, then run. */
  private async runStep(raw: unknown, msg: StepMessage, meta: MessageMeta): Promise<void> {
    const job = await this.o.store.get(msg.job);
    if (!job) {
      meta.log.warn(`message for unknown job ${msg.job} dropped`);
      return;
    }
    if (ENDED.has(job.status)) {
      await this.steps.cleanUp(job, msg);
      return;
    }
    if (Date.now() > Date.parse(job.expiresAt)) {
      await this.fail(
        job.id,
        'JOB_EXPIRED',
        `the import did not finish within ${this.o.config.maxJobHours} hours (MAX_JOB_HOURS); it was stopped`,
      );
      await this.steps.cleanUp(job, msg);
      meta.log.error(`job ${job.id} expired`);
      return;
    }
    telemetry().annotate({
      'oci_import.source': job.request.source,
      'oci_import.target': job.targets.join(', '),
      'oci_import.bytes_total': job.bytesTotal,
    });
    const mismatch = stepMismatch(job, msg);
    if (mismatch) {
      await this.refuse(raw, msg, mismatch, meta);
      return;
    }
    const step = this.stepContext(meta.handOff);
    try {
      await this.steps.run(job, msg, step, meta);
    } catch (err) {
      if (err instanceof StepRefusedError) await this.refuse(raw, msg, err, meta);
      else await this.onStepError(job, msg, meta, err);
    } finally {
      step.clear();
    }
  }

  /** A step message that must do nothing: kept on the poison queue as a reason and a length; its job is not touched. */
  private async refuse(raw: unknown, msg: StepShape, err: StepRefusedError, meta: MessageMeta): Promise<void> {
    await this.o.queue.sendPoison({ v: 1, rejected: { reason: err.code, length: messageLength(raw) } });
    meta.log.warn(
      `a ${msg.step} message naming job ${msg.job} was refused [${err.code}]: ${err.message}; nothing was done and the job is left as it is`,
    );
  }

  private stepContext(handOff: MessageMeta['handOff']): StepContext & { clear(): void } {
    const budgetMs = this.o.config.stepBudgetSeconds * 1000;
    const marginMs = this.o.stepMarginMs ?? STEP_MARGIN_MS;
    const until = Date.now() + budgetMs;
    const deadline = deadlineSignal(
      budgetMs + marginMs,
      () =>
        new TimeoutError(
          `the step ran ${formatDuration(budgetMs + marginMs)}, past its budget (STEP_BUDGET_SECONDS ${this.o.config.stepBudgetSeconds} + ${formatDuration(marginMs)})`,
        ),
    );
    // every request of the step listens to it
    setMaxListeners(10_000, deadline.signal);
    const next = handOff ? this.handOffQueue(handOff) : this.queue;
    return { until, budgetMs, signal: deadline.signal, clear: deadline.clear, next: (m) => next.send(m) };
  }

  /** Step messages signed as the queue has them, given to `handOff` instead of sent (MessageMeta.handOff). */
  private handOffQueue(handOff: (message: StepMessage) => void): JobQueue {
    return new SigningQueue(
      {
        send: async (message) => handOff(message),
        sendPoison: (message) => this.o.queue.sendPoison(message),
      },
      () => requireMessageKeys(this.o.config.messageKeys),
    );
  }

  private async onStepError(job: JobRecord, msg: StepMessage, meta: MessageMeta, raw: unknown): Promise<void> {
    const err = this.explain(job, raw);
    const code = errorCode(err);
    const message = errorMessage(err);
    if (err instanceof RateLimitedError) {
      await this.waitOrFail(job, msg, meta, err);
      return;
    }
    if (!isTemporary(err)) {
      await this.fail(job.id, code, message);
      await this.closeSession(job, msg);
      meta.log.error(`job ${job.id} ${msg.step} failed: [${code}] ${message}`);
      return;
    }
    if (meta.dequeueCount >= meta.maxDequeueCount) {
      await this.fail(job.id, code, `gave up after ${meta.dequeueCount} attempts of the ${msg.step} step: ${message}`);
      await this.closeSession(job, msg);
    } else {
      // kept for the poison trigger, should the next deliveries end without a word (a worker killed, a timeout)
      await this.o.store
        .update(job.id, (j) =>
          ENDED.has(j.status) ? undefined : { ...j, lastError: { code, message: bounded(message) } },
        )
        .catch(() => undefined);
    }
    meta.log.warn(`job ${job.id} ${msg.step} attempt ${meta.dequeueCount} failed, will retry: [${code}] ${message}`);
    throw err;
  }

  /** A job that failed in this step leaves no upload session open on the target (best effort: registries purge them too). */
  private async closeSession(job: JobRecord, msg: StepMessage): Promise<void> {
    await this.steps.cleanUp(job, msg).catch(() => undefined);
  }

  /** A registry asked to come back later: re-enqueue the step with that delay, or fail when it is too long. */
  private async waitOrFail(job: JobRecord, msg: StepMessage, meta: MessageMeta, err: RateLimitedError): Promise<void> {
    const max = this.o.config.maxRetryAfterSeconds;
    const at = new Date(err.until).toISOString();
    if (err.retryAfterMs > max * 1000) {
      await this.fail(
        job.id,
        'RATE_LIMITED',
        `${err.message}; that is longer than MAX_RETRY_AFTER_SECONDS (${max} s): import again after ${at}`,
      );
      meta.log.error(`job ${job.id} ${msg.step} rate limited until ${at}: failed`);
      return;
    }
    await this.o.store.update(job.id, (j) =>
      ENDED.has(j.status) ? undefined : { ...j, status: 'waiting', waitingUntil: at },
    );
    await this.queue.send(msg, Math.ceil(err.retryAfterMs / 1000));
    meta.log.warn(`job ${job.id} ${msg.step} rate limited: waiting until ${at}`);
  }

  private explain(job: JobRecord, err: unknown): unknown {
    try {
      return this.registries.explain(err, this.sidesUnsealed(job));
    } catch {
      return err;
    }
  }

  private async acceptDropped(raw: unknown, meta: MessageMeta): Promise<void> {
    try {
      const job = await this.submit(raw, 'queue', { handOff: meta.handOff });
      meta.log.info(`queued request accepted as job ${job.id}`);
    } catch (err) {
      if (!(err instanceof RequestError) || err.temporary) throw err;
      // A request that can never succeed goes where operators look — as a reason code and a length only: the
      // message is user input (it may hold a password in any spelling or nesting, or not even parse).
      const record = rejectionRecord(raw, err);
      await this.o.queue.sendPoison(record);
      const { reason, field, length } = record.rejected;
      meta.log.warn(`queued request rejected: [${reason}]${field ? ` ${field}` : ''} (${length} bytes, not kept)`);
    }
  }

  private async fail(id: string, code: ErrorCode, message: string): Promise<void> {
    await this.o.store.update(id, (j) =>
      ENDED.has(j.status) ? undefined : { ...j, status: 'failed', error: { code, message: bounded(message) } },
    );
  }

  // ---- registries of a job -----------------------------------------------------------------------------

  /** The job's source and target clients, its sealed credentials opened. */
  private async sides(job: JobRecord): Promise<{ source: SideClient; target: SideClient }> {
    let credentials: SourceCredentials | undefined;
    if (job.request.inlineCredentials) {
      const sealed = await this.o.store.secret(job.id);
      if (!sealed || !this.o.config.credentialKey) {
        throw new ImportError(
          'INVALID_REQUEST',
          'the stored credentials of this import cannot be read (CREDENTIAL_KEY changed, or the import ended); import again',
          { side: 'config' },
        );
      }
      credentials = { kind: 'inline', credentials: open<Credentials>(this.o.config.credentialKey, job.id, sealed) };
    }
    return this.sidesWith(job, credentials);
  }

  /** The sides for explaining errors: sign-in contexts only, no secret needed. */
  private sidesUnsealed(job: JobRecord): { source: SideClient; target: SideClient } {
    return this.sidesWith(job, job.request.inlineCredentials ? undefined : this.namedCredentials(job));
  }

  private sidesWith(
    job: JobRecord,
    credentials: SourceCredentials | undefined,
  ): { source: SideClient; target: SideClient } {
    const named = credentials ?? this.namedCredentials(job);
    return {
      source: this.registries.source(
        parseReference(job.request.source).registry,
        named,
        job.request.registryResourceId,
      ),
      target: this.registries.target(job.request.target),
    };
  }

  private namedCredentials(job: JobRecord): SourceCredentials | undefined {
    if (!job.request.credential) return undefined;
    const credential = this.o.config.credentials.get(job.request.credential.toLowerCase());
    if (!credential)
      throw new ImportError(
        'INVALID_REQUEST',
        `the credential "${job.request.credential}" of this import is no longer configured`,
        { side: 'config' },
      );
    return { kind: 'named', credential };
  }
}
