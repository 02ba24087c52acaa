/**
 * The import service behind the functions: accept a request (create the job, enqueue its first
 * step), report a job's status, and run ONE bounded step per queue message.
 *
 * Steps: `plan` (resolve the source, write the plan, fan out one message per blob) → `blob` (one
 * budgeted copy step of one blob, re-enqueued until done; parallel across blobs) → `finalize`
 * (manifests and tags; enqueued by whichever blob step completes the set). Every step is idempotent
 * and may run twice or die at any instant: blob steps hold a lease in their checkpoint, save the
 * upload Location after every chunk, and resume from it; the fan-in is an ETag-guarded update.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import { namedCredential } from '../config.js';
import { FetchSlots } from '../engine/part-reader.js';
import { ImportEngine } from '../engine/engine.js';
import { initialBlobState } from '../engine/copy-blob.js';
import type { BlobState, ImportPlan, ImportRequest } from '../engine/types.js';
import { azureSettings, sourceAuth, targetIdentityAuth, withRegistryAuth, type RegistryAuth } from '../azure/clients.js';
import type { Authenticator, Credentials } from '../oci/auth.js';
import { errorCode } from '../oci/errors.js';
import { normalizeRegistry, parseReference } from '../oci/reference.js';
import { RegistryClient } from '../oci/registry.js';
import { checkSource, checkSourceUrl, type Lookup } from '../policy/sources.js';
import { stepMessageSchema, type JobQueue, type StepMessage } from './queue.js';
import { importRequestSchema, RequestError, validateImportRequest, type ValidatedImport } from './request.js';
import { open, seal } from './secrets.js';
import { progressOf, type BlobTask, type JobProgress, type JobRecord, type JobStore, type PoisonRecord } from './store.js';

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface ServiceOptions {
  readonly config: Config;
  readonly env: Record<string, string | undefined>;
  readonly store: JobStore;
  readonly queue: JobQueue;
  readonly lookup?: Lookup;
  /** Builds registry clients; tests inject retry policies. */
  readonly client?: (registry: string, insecure: boolean, credentials?: Credentials, authenticator?: Authenticator, checkUrl?: (url: URL) => Promise<void>) => RegistryClient;
  /** Lease of a blob step beyond its budget. @default 30 000 ms */
  readonly leaseMarginMs?: number;
  /**
   * How long the host keeps a running queue message invisible: a step whose worker died comes back only after
   * it. @default 600 000 ms (the queues extension's fixed 10 minutes)
   */
  readonly queueLeaseMs?: number;
}

export interface JobStatusView {
  readonly id: string;
  readonly status: JobRecord['status'];
  readonly source: string;
  readonly targets: readonly string[];
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly progress: JobProgress;
  readonly digest?: string;
  readonly notes?: readonly string[];
  readonly error?: { readonly code: string; readonly message: string };
  /**
   * Queued or running, but nothing has updated the job for longer than a step, plus the queue lease after which a
   * step lost with its worker is delivered again: no step is working on it (or the queue is far behind).
   */
  readonly stalled?: true;
}

export interface MessageMeta {
  readonly dequeueCount: number;
  readonly maxDequeueCount: number;
  readonly log: Logger;
}

/**
 * Our own errors say whether another attempt may help; anything else (storage hiccups, a dying
 * worker's I/O) is retried, boundedly: the host gives up after maxDequeueCount.
 */
function retryable(err: unknown): boolean {
  const flag = (err as { temporary?: unknown } | null)?.temporary;
  return typeof flag === 'boolean' ? flag : true;
}

/** A blob step's lease lasts its budget plus this margin (the last chunk in flight, the checkpoint write). */
const DEFAULT_LEASE_MARGIN_MS = 30_000;

/** The queues extension receives with a 10-minute visibility timeout, renewed at half while the function runs
 * (azure-webjobs-sdk QueueListener `_visibilityTimeout`): after a lost worker, the message reappears after that. */
export const DEFAULT_QUEUE_LEASE_MS = 600_000;

/** What a poisoned message is known by: where it came from and why it was given up. */
export interface PoisonMeta {
  /** Id of the message in `<queue>-poison` (the trigger's metadata). */
  readonly messageId?: string;
  /** Deliveries the original message had (host.json maxDequeueCount). */
  readonly maxDequeueCount: number;
  readonly log: Logger;
}

/** The fields of an import request: a rejection record may name one of them, never what the message held. */
const REQUEST_FIELDS = new Set(Object.keys(importRequestSchema.shape));

/** A rejected request as the app itself puts it on the poison queue: a reason, never the body. */
interface RejectionRecord {
  readonly v: 1;
  readonly rejected: { readonly reason: string; readonly field?: string; readonly length: number };
}

/** Our own rejection record, and nothing else that looks like one: a code, a request field, a number. */
function isRejectionRecord(raw: unknown): raw is RejectionRecord {
  const r = (raw as { v?: unknown; rejected?: { reason?: unknown; field?: unknown; length?: unknown } } | null);
  if (typeof r !== 'object' || r === null || r.v !== 1 || typeof r.rejected !== 'object' || r.rejected === null) return false;
  const { reason, field, length } = r.rejected;
  return typeof reason === 'string' && /^[A-Z][A-Z0-9_]{0,63}$/.test(reason) && Number.isInteger(length)
    && (field === undefined || (typeof field === 'string' && REQUEST_FIELDS.has(field.replace(/\[\d+\]$/, ''))));
}

/** UTF-8 length of a message as the queue held it (strings as is, anything else as its JSON). */
function messageLength(raw: unknown): number {
  if (typeof raw === 'string') return Buffer.byteLength(raw, 'utf8');
  try {
    return Buffer.byteLength(JSON.stringify(raw) ?? '', 'utf8');
  } catch {
    return 0;
  }
}

function targetNames(req: ValidatedImport | JobRecord['request']): string[] {
  const names = (req.images ?? []).map((i) => `${req.target}/${i.includes(':') ? i : `${i}:latest`}`);
  if (req.repository) names.push(`${req.target}/${req.repository}`);
  if (names.length === 0) {
    const src = parseReference(req.source);
    names.push(`${req.target}/${src.repository}${src.tag ? `:${src.tag}` : src.digest ? '' : ':latest'}`);
  }
  return names;
}

export class ImportService {
  private readonly owner = randomUUID();
  /** One budget of ranged-GET parts for every step this process runs at once (each has its own
   * engine): memory stays bounded by FETCH_CONCURRENCY, not by the host's batch size. */
  private readonly fetchSlots: FetchSlots;

  constructor(private readonly o: ServiceOptions) {
    this.fetchSlots = new FetchSlots(2 * o.config.fetchConcurrency);
  }

  // ---- accept ------------------------------------------------------------------------------------

  /** Validates, creates the job and enqueues its plan step. Throws RequestError for bad input. */
  async submit(body: unknown, origin: 'http' | 'queue'): Promise<JobRecord> {
    const req = await validateImportRequest(body, { config: this.o.config, env: this.o.env, origin, lookup: this.o.lookup });
    const id = randomUUID();
    const now = new Date().toISOString();
    const job: JobRecord = {
      id, status: 'queued', createdAt: now, updatedAt: now,
      request: {
        source: req.source, target: req.target, images: req.images, repository: req.repository, force: req.force,
        platforms: req.platforms, credential: req.credential, inlineCredentials: req.inlineCredentials !== undefined,
        ...(req.registryResourceId ? { registryResourceId: req.registryResourceId } : {}),
      },
      targets: targetNames(req), blobsTotal: 0, bytesTotal: 0, manifests: 0, blobBytes: {}, doneBlobs: [],
    };
    const secret = req.inlineCredentials ? seal(this.o.config.credentialKey!, id, req.inlineCredentials) : undefined;
    await this.o.store.create(job, secret);
    await this.o.queue.send({ v: 1, job: id, step: 'plan' });
    return job;
  }

  async status(id: string): Promise<JobStatusView | undefined> {
    const job = await this.o.store.get(id);
    if (!job) return undefined;
    return {
      id: job.id, status: job.status, source: job.request.source, targets: job.targets,
      createdAt: job.createdAt, updatedAt: job.updatedAt, progress: progressOf(job),
      ...(job.digest ? { digest: job.digest } : {}),
      ...(job.notes?.length ? { notes: job.notes } : {}),
      ...(job.error ? { error: job.error } : {}),
      ...(this.stalled(job) ? { stalled: true as const } : {}),
    };
  }

  /** See JobStatusView.stalled: a step lasts at most its budget plus the lease margin; a lost one returns after the queue lease. */
  private stalled(job: JobRecord, now = Date.now()): boolean {
    if (job.status !== 'queued' && job.status !== 'running') return false;
    const quietMs = (this.o.queueLeaseMs ?? DEFAULT_QUEUE_LEASE_MS) + this.o.config.stepBudgetSeconds * 1000 + (this.o.leaseMarginMs ?? DEFAULT_LEASE_MARGIN_MS);
    return now - Date.parse(job.updatedAt) > quietMs;
  }

  // ---- work ----------------------------------------------------------------------------------------

  /** Runs one step for a queue message: a step message, or a request a user dropped on the queue. */
  async handleMessage(raw: unknown, meta: MessageMeta): Promise<void> {
    const step = stepMessageSchema.safeParse(raw);
    if (!step.success) {
      await this.acceptDropped(raw, meta);
      return;
    }
    const msg = step.data;
    const job = await this.o.store.get(msg.job);
    if (!job) {
      meta.log.warn(`message for unknown job ${msg.job} dropped`);
      return;
    }
    if (job.status === 'succeeded' || job.status === 'failed') return;
    try {
      if (msg.step === 'plan') await this.planStep(job, meta);
      else if (msg.step === 'blob') await this.blobStep(job, msg, meta);
      else await this.finalizeStep(job, meta);
    } catch (err) {
      const code = errorCode(err);
      const message = (err as Error).message ?? String(err);
      if (!retryable(err)) {
        await this.fail(job.id, code, message);
        meta.log.error(`job ${job.id} ${msg.step} failed: [${code}] ${message}`);
        return;
      }
      if (meta.dequeueCount >= meta.maxDequeueCount) {
        await this.fail(job.id, code, `gave up after ${meta.dequeueCount} attempts of the ${msg.step} step: ${message}`);
      }
      meta.log.warn(`job ${job.id} ${msg.step} attempt ${meta.dequeueCount} failed, will retry: [${code}] ${message}`);
      throw err;
    }
  }

  private async acceptDropped(raw: unknown, meta: MessageMeta): Promise<void> {
    try {
      const job = await this.submit(raw, 'queue');
      meta.log.info(`queued request accepted as job ${job.id}`);
    } catch (err) {
      if (!(err instanceof RequestError)) throw err;
      // A request that can never succeed goes where operators look — as a reason code and a length only: the
      // message is user input (it may hold a password in any spelling or nesting, or not even parse).
      // A message the library could not parse as JSON arrives as a string.
      const reason = typeof raw === 'string' ? 'INVALID_JSON' : err.code;
      const field = typeof raw !== 'string' && err.target && REQUEST_FIELDS.has(err.target.replace(/\[\d+\]$/, '')) ? err.target : undefined;
      const length = messageLength(raw);
      const record: RejectionRecord = { v: 1, rejected: { reason, ...(field ? { field } : {}), length } };
      await this.o.queue.sendPoison(record);
      meta.log.warn(`queued request rejected: [${reason}]${field ? ` ${field}` : ''} (${length} bytes, not kept)`);
    }
  }

  /**
   * A message the host gave up on (`<queue>-poison`), or the app's own rejection record. A step message fails its
   * job — with the error an earlier attempt recorded, else STEP_POISONED — so no job stays `running` once its
   * messages are gone (a step killed with its worker, or timed out, on every delivery never ran its own
   * last-attempt handling). Anything else is recorded under `poisoned/` as a reason and a length: never the body.
   * Idempotent: a job that already ended is left as it is.
   */
  async handlePoison(raw: unknown, meta: PoisonMeta): Promise<void> {
    const step = stepMessageSchema.safeParse(raw);
    if (step.success) {
      await this.failPoisoned(step.data, meta);
      return;
    }
    const record: PoisonRecord = isRejectionRecord(raw)
      ? { kind: 'rejected', reason: raw.rejected.reason, ...(raw.rejected.field ? { field: raw.rejected.field } : {}), length: raw.rejected.length }
      : { kind: 'message', reason: typeof raw === 'string' ? 'INVALID_JSON' : 'MESSAGE_POISONED', length: messageLength(raw) };
    const path = await this.o.store.recordPoison({ ...record, ...(meta.messageId ? { messageId: meta.messageId } : {}) });
    meta.log.warn(record.kind === 'rejected'
      ? `rejected queued request [${record.reason}]${record.field ? ` ${record.field}` : ''} (${record.length} bytes) recorded as ${path}`
      : `a queued message that is not a step was given up after ${meta.maxDequeueCount} deliveries [${record.reason}] (${record.length} bytes, body not kept); recorded as ${path}`);
  }

  private async failPoisoned(msg: StepMessage, meta: PoisonMeta): Promise<void> {
    const what = `the ${msg.step} step${msg.blob === undefined ? '' : ` of blob ${msg.blob}`}`;
    const job = await this.o.store.get(msg.job);
    if (!job) {
      meta.log.warn(`poisoned ${msg.step} message for unknown job ${msg.job} dropped`);
      return;
    }
    const error = {
      code: 'STEP_POISONED',
      message: `${what} was given up after ${meta.maxDequeueCount} deliveries that all ended without a result (the worker timed out, died or failed each time); start the import again, and see the function logs if it recurs`,
    };
    let failedNow = false;
    const updated = await this.o.store.update(job.id, (j) => {
      failedNow = !(j.status === 'succeeded' || j.status === 'failed');
      return failedNow ? { ...j, status: 'failed', error: j.error ?? error } : undefined;
    });
    if (failedNow) {
      meta.log.error(`job ${job.id} failed: ${what} was poisoned [${updated.error?.code ?? error.code}]`);
    } else {
      meta.log.info(`poisoned ${msg.step} message for job ${job.id}, which is ${updated.status} already`);
    }
  }

  private async fail(id: string, code: string, message: string): Promise<void> {
    await this.o.store.update(id, (j) => (j.status === 'succeeded' || j.status === 'failed') ? undefined
      : { ...j, status: 'failed', error: { code, message } });
  }

  private async engineFor(job: JobRecord): Promise<ImportEngine> {
    const { config } = this.o;
    const source = parseReference(job.request.source);
    let sourceCreds: Credentials | undefined;
    if (job.request.inlineCredentials) {
      const sealed = await this.o.store.secret(job.id);
      if (!sealed || !config.credentialKey) throw new RequestError(500, 'CREDENTIALS_UNAVAILABLE', 'the stored credentials of this job cannot be read');
      sourceCreds = open<Credentials>(config.credentialKey, job.id, sealed);
    } else if (job.request.credential) {
      sourceCreds = namedCredential(this.o.env, job.request.credential);
    }
    return new ImportEngine({
      source: this.sourceClient(source.registry, sourceCreds, job.request.registryResourceId),
      target: this.targetClient(job.request.target),
      chunkSize: config.chunkSize,
      fetchConcurrency: config.fetchConcurrency,
      fetchSlots: this.fetchSlots,
      maxManifests: config.maxManifests,
    });
  }

  private insecure(registry: string): boolean {
    return this.o.config.insecureRegistries.map(normalizeRegistry).includes(registry);
  }

  private client(registry: string, credentials?: Credentials, auth?: RegistryAuth, checkUrl?: (url: URL) => Promise<void>): RegistryClient {
    const insecure = this.insecure(registry);
    const build = (authenticator?: Authenticator): RegistryClient =>
      this.o.client?.(registry, insecure, credentials, authenticator, checkUrl) ?? new RegistryClient({ registry, insecure, credentials, authenticator, checkUrl });
    return auth ? withRegistryAuth(auth, build) : build();
  }

  /**
   * A client for a source registry with the given credentials (a password without username is an Entra ID
   * token); a registry given by ARM resource ID is pulled from with the app's managed identity.
   */
  sourceClient(registry: string, credentials?: Credentials, resourceId?: string): RegistryClient {
    const host = normalizeRegistry(registry);
    const auth = sourceAuth(azureSettings(this.o.config), { registry: host, insecure: this.insecure(host), credentials, resourceId });
    // Redirects (to storage) and token realms of a source must not lead to non-public addresses.
    return this.client(host, credentials, auth, (url) => checkSourceUrl(url, this.o.config.allowedSources, this.o.lookup));
  }

  /** A client for the target registry, signed in as the settings say. */
  targetClient(registry = this.o.config.targetRegistry ?? ''): RegistryClient {
    const { config } = this.o;
    const host = normalizeRegistry(registry);
    if (config.targetAuth === 'managed-identity') {
      return this.client(host, undefined, targetIdentityAuth(azureSettings(config), host, this.insecure(host)));
    }
    const credentials = config.targetUsername ? { username: config.targetUsername, password: config.targetPassword! } : undefined;
    return this.client(host, credentials);
  }

  private importRequest(job: JobRecord): ImportRequest {
    const r = job.request;
    return { source: r.source, target: r.target, images: r.images, repository: r.repository, force: r.force, platforms: r.platforms };
  }

  private async planStep(job: JobRecord, meta: MessageMeta): Promise<void> {
    let plan = await this.o.store.plan(job.id);
    if (!plan) {
      // Checked again here: a queued request skips HTTP, and DNS may have changed since.
      await checkSource(parseReference(job.request.source).registry, this.o.config.allowedSources, this.o.lookup);
      plan = await (await this.engineFor(job)).plan(this.importRequest(job));
      await this.o.store.savePlan(job.id, plan);
    }
    const p = plan;
    const updated = await this.o.store.update(job.id, (j) => ({
      ...j, status: 'running', blobsTotal: p.blobs.length, bytesTotal: p.blobs.reduce((n, b) => n + b.size, 0),
      manifests: p.manifests.length, notes: p.notes,
    }));
    meta.log.info(`job ${job.id} planned: ${p.manifests.length} manifests, ${p.blobs.length} blobs`);
    if (p.blobs.length === 0) {
      await this.o.queue.send({ v: 1, job: job.id, step: 'finalize' });
      return;
    }
    for (let i = 0; i < p.blobs.length; i++) {
      if (!updated.doneBlobs.includes(i)) await this.o.queue.send({ v: 1, job: job.id, step: 'blob', blob: i });
    }
  }

  private async blobStep(job: JobRecord, msg: StepMessage, meta: MessageMeta): Promise<void> {
    const plan = await this.o.store.plan(job.id);
    const index = msg.blob ?? -1;
    const blob = plan?.blobs[index];
    if (!plan || !blob) throw new Error(`job ${job.id}: blob step ${index} without a plan entry`);
    const repository = ImportEngine.repositories(plan)[0]!;
    const budgetMs = this.o.config.stepBudgetSeconds * 1000;
    const leaseMs = budgetMs + (this.o.leaseMarginMs ?? DEFAULT_LEASE_MARGIN_MS);

    // 1. Claim the blob: one step at a time works on it; a live lease elsewhere → look again later.
    const existing = await this.o.store.blobTask(job.id, index);
    let task: BlobTask = existing?.task ?? { state: initialBlobState(blob, repository) };
    if (task.state.done) {
      await this.blobDone(job.id, plan, index, task.state);
      return;
    }
    const now = Date.now();
    if (task.lease && task.lease.owner !== this.owner && task.lease.until > now) {
      await this.o.queue.send(msg, Math.ceil((task.lease.until - now) / 1000) + 1);
      return;
    }
    task = { ...task, lease: { owner: this.owner, until: now + leaseMs } };
    let etag = await this.o.store.saveBlobTask(job.id, index, task, existing?.etag);
    if (!etag) {
      // Someone else claimed it between our read and write: they carry on; check back after their lease.
      await this.o.queue.send(msg, Math.ceil(leaseMs / 1000));
      return;
    }

    // 2. One budgeted step, saving the checkpoint after every chunk.
    const save = async (state: BlobState, keepLease: boolean): Promise<void> => {
      const next: BlobTask = keepLease ? { ...task, state } : { state };
      const written = await this.o.store.saveBlobTask(job.id, index, next, etag);
      if (!written) throw Object.assign(new Error(`job ${job.id} blob ${index}: checkpoint lost to another worker`), { temporary: true });
      etag = written;
      task = next;
    };
    let state: BlobState;
    try {
      const engine = await this.engineFor(job);
      state = await engine.copyBlob(plan, task.state, { until: Date.now() + budgetMs }, (s) => save(s, true));
      await save(state, false);
    } catch (err) {
      await save(task.state, false).catch(() => undefined);
      throw err;
    }

    // 3. Progress, then either the next step of this blob or the fan-in.
    await this.o.store.update(job.id, (j) => j.blobBytes[index] === state.offset && !state.done ? undefined
      : { ...j, blobBytes: { ...j.blobBytes, [index]: state.done ? state.size : state.offset } });
    if (state.done) await this.blobDone(job.id, plan, index, state);
    else await this.o.queue.send(msg);
    meta.log.info(`job ${job.id} blob ${index} ${state.done ? `done (${state.outcome})` : `at ${state.offset}/${state.size}`}`);
  }

  /** Fan-in: marks the blob done; the step that completes the set enqueues finalize (again on redelivery: finalize is idempotent). */
  private async blobDone(id: string, plan: ImportPlan, index: number, state: BlobState): Promise<void> {
    const job = await this.o.store.update(id, (j) => j.doneBlobs.includes(index) ? undefined
      : { ...j, doneBlobs: [...j.doneBlobs, index], blobBytes: { ...j.blobBytes, [index]: state.size } });
    if (job.doneBlobs.length === plan.blobs.length) await this.o.queue.send({ v: 1, job: id, step: 'finalize' });
  }

  private async finalizeStep(job: JobRecord, meta: MessageMeta): Promise<void> {
    const plan = await this.o.store.plan(job.id);
    if (!plan) throw new Error(`job ${job.id}: finalize without a plan`);
    const engine = await this.engineFor(job);
    // Further target repositories get their blobs by mount from the first one (a copy where the registry refuses).
    for (const repository of ImportEngine.repositories(plan).slice(1)) {
      for (let s of ImportEngine.blobStates(plan, repository)) {
        while (!s.done) s = await engine.copyBlob(plan, s, { until: Date.now() + this.o.config.stepBudgetSeconds * 1000 });
      }
    }
    const result = await engine.finalize(plan);
    await this.o.store.update(job.id, (j) => ({ ...j, status: 'succeeded', digest: result.digest }));
    meta.log.info(`job ${job.id} succeeded: ${result.digest} (${[...result.tagged, ...result.unchanged].join(', ') || 'by digest'})`);
  }
}
