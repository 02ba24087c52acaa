/**
 * The timer's sync pass: plan by HEAD comparison, enqueue one import per changed tag through the same
 * queue as every other import, and keep a report of the last pass. A tag whose import from an earlier
 * pass is still queued or running (same source digest) is not enqueued again.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../config.js';
import { forEachLimited } from '../concurrency.js';
import { errorCode } from '../errors.js';
import { passDeadline, planSync, type SyncError } from '../sync/pass.js';
import type { SyncRule } from '../sync/rules.js';
import type { Documents } from '../store/documents.js';
import type { ImportService } from './service.js';

export interface SyncReport {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly rules: number;
  readonly tagsSeen: number;
  readonly enqueued: readonly { readonly source: string; readonly target: string; readonly job: string }[];
  /** Unchanged tags (same digest in the target). */
  readonly skipped: readonly { readonly source: string; readonly target: string; readonly digest: string }[];
  /** Changed tags whose import from an earlier pass is still under way. */
  readonly inProgress: readonly { readonly source: string; readonly target: string; readonly job: string }[];
  readonly errors: readonly SyncError[];
}

interface InFlight {
  readonly job: string;
  readonly sourceDigest: string;
}

const REPORT = 'sync/latest.json';
const inflightPath = (target: string): string =>
  `sync/inflight/${createHash('sha256').update(target).digest('hex')}.json`;

export class SyncService {
  constructor(
    private readonly imports: ImportService,
    private readonly docs: Documents,
    private readonly config: Config,
    private readonly target: string,
  ) {}

  async runPass(rules: readonly SyncRule[]): Promise<SyncReport> {
    const startedAt = new Date().toISOString();
    const deadline = passDeadline(this.config);
    const plan = await planSync(rules, {
      signal: deadline.signal,
      target: this.target,
      targetClient: this.imports.registries.target(this.target).client,
      sourceClient: (registry, name) => {
        const credential = name ? this.config.credentials.get(name.toLowerCase()) : undefined;
        return this.imports.registries.source(registry, credential && { kind: 'named', credential }).client;
      },
      maxTags: this.config.maxTags,
      concurrency: this.config.syncConcurrency,
    }).finally(deadline.clear);
    const enqueued: SyncReport['enqueued'][number][] = [];
    const inProgress: SyncReport['inProgress'][number][] = [];
    const errors: SyncError[] = [...plan.errors];
    // enqueued SYNC_CONCURRENCY at once: each costs a few storage round trips
    await forEachLimited(
      plan.items.filter((i) => i.action === 'import'),
      this.config.syncConcurrency,
      async (item) => {
        const target = `${this.target}/${item.target}`;
        const running = await this.stillImporting(target, item.sourceDigest);
        if (running) {
          inProgress.push({ source: item.source, target, job: running });
          return;
        }
        try {
          const req = item.request!;
          const job = await this.imports.submit(
            {
              source: req.source,
              images: req.images,
              force: true,
              platforms: req.platforms,
              credential: rules[item.rule]!.credential,
              ...(req.includeReferrers ? { includeReferrers: true, referrerTypes: req.referrerTypes } : {}),
            },
            'queue',
          );
          await this.docs.put(inflightPath(target), {
            job: job.id,
            sourceDigest: item.sourceDigest,
          } satisfies InFlight);
          enqueued.push({ source: item.source, target, job: job.id });
        } catch (err) {
          errors.push({ rule: item.rule, tag: item.tag, code: errorCode(err), message: (err as Error).message });
        }
      },
    );
    const report: SyncReport = {
      startedAt,
      finishedAt: new Date().toISOString(),
      rules: plan.rules,
      tagsSeen: plan.tagsSeen,
      enqueued,
      inProgress,
      errors,
      skipped: plan.items
        .filter((i) => i.action === 'unchanged')
        .map((i) => ({ source: i.source, target: `${this.target}/${i.target}`, digest: i.sourceDigest })),
    };
    await this.docs.put(REPORT, report);
    return report;
  }

  /** The job still importing this source digest into `target` from an earlier pass, if any. */
  private async stillImporting(target: string, sourceDigest: string): Promise<string | undefined> {
    const previous = await this.docs.get<InFlight>(inflightPath(target));
    if (!previous || previous.value.sourceDigest !== sourceDigest) return undefined;
    const status = (await this.imports.status(previous.value.job))?.status;
    return status === 'queued' || status === 'running' || status === 'waiting' ? previous.value.job : undefined;
  }

  async latest(): Promise<SyncReport | undefined> {
    return (await this.docs.get<SyncReport>(REPORT))?.value;
  }
}
