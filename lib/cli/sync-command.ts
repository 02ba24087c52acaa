/**
 * `oci-import sync --rules FILE`: one sync pass in this process. Plans by HEAD comparison, then runs
 * each import with the same engine as `import`; `--dry-run` prints the plan and writes nothing.
 */
import { readFile } from 'node:fs/promises';
import type { Config } from '../config.js';
import { mapLimited } from '../concurrency.js';
import { engineFromConfig, runImport } from '../engine/engine.js';
import { PartPool } from '../engine/part-reader.js';
import { errorCode } from '../errors.js';
import { parseReference } from '../oci/reference.js';
import type { RegistryClient } from '../oci/registry.js';
import type { Registries } from '../sides/registries.js';
import { passDeadline, planSync, type SyncItem, type SyncPlan } from '../sync/pass.js';
import { parseRules, RulesError } from '../sync/rules.js';
import { rawStream } from './terminal.js';

export interface SyncCommand {
  readonly rulesFile: string;
  readonly dryRun: boolean;
  readonly json: boolean;
  /** A progress line on stderr (a terminal, without --quiet): tags compared, imports running and done. */
  readonly progress?: boolean;
  readonly config: Config;
  readonly registries: Registries;
  readonly target: string;
  readonly io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };
  readonly redact: (text: string) => string;
}

type SyncResult = SyncItem & { outcome: string; digest?: string; error?: string };

export async function runSync(c: SyncCommand): Promise<number> {
  const rules = parseRules(await readRulesFile(c.rulesFile), c.rulesFile, c.config);
  const sourceClient = (registry: string, name?: string): RegistryClient => {
    const credential = name ? c.config.credentials.get(name.toLowerCase()) : undefined;
    return c.registries.source(registry, credential && { kind: 'named', credential }).client;
  };
  const targetClient = c.registries.target(c.target).client;
  const deadline = passDeadline(c.config);
  const progress = new SyncProgress(c.progress ? rawStream(c.io.stderr) : undefined);
  const plan = await planSync(rules, {
    target: c.target,
    targetClient,
    sourceClient,
    maxTags: c.config.maxTags,
    concurrency: c.config.syncConcurrency,
    signal: deadline.signal,
    onCompared: () => progress.compared(),
  }).finally(deadline.clear);
  progress.plan(plan.items.filter((i) => i.action !== 'unchanged' && !c.dryRun).length);

  // The imports run SYNC_CONCURRENCY at once, their ranged GETs within one shared part pool (bounded memory).
  const partPool = new PartPool(2 * c.config.fetchConcurrency, c.config.copyMemory);
  const results = await mapLimited(plan.items, c.config.syncConcurrency, async (item): Promise<SyncResult> => {
    if (item.action === 'unchanged' || c.dryRun)
      return { ...item, outcome: item.action === 'unchanged' ? 'unchanged' : 'would import' };
    progress.running(1);
    try {
      const src = parseReference(item.request!.source);
      const engine = engineFromConfig(
        c.config,
        { source: sourceClient(src.registry, rules[item.rule]!.credential), target: targetClient },
        { partPool },
      );
      const r = await runImport(engine, item.request!, {
        blobConcurrency: c.config.blobConcurrency,
        stepMs: c.config.stepBudgetSeconds * 1000,
      });
      return { ...item, outcome: 'imported', digest: r.digest };
    } catch (err) {
      return { ...item, outcome: 'failed', error: `[${errorCode(err)}] ${(err as Error).message}` };
    } finally {
      progress.running(-1);
    }
  });
  progress.end();
  printResults(c, plan, results);
  return results.some((r) => r.outcome === 'failed') || plan.errors.length ? 1 : 0;
}

/** A rules file that cannot be read is refused like a bad rule: INVALID_RULES, the file named. */
async function readRulesFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new RulesError(file, undefined, '', `cannot read the rules file: ${(err as Error).message}`);
  }
}

/** The pass on stdout: one JSON document with --json, else a line per item, a line per planning error and a summary. */
function printResults(c: SyncCommand, plan: SyncPlan, results: readonly SyncResult[]): void {
  const out = (line: string): void => void c.io.stdout.write(c.redact(line) + '\n');
  if (c.json) {
    c.io.stdout.write(
      c.redact(
        JSON.stringify(
          {
            dryRun: c.dryRun,
            rules: plan.rules,
            tagsSeen: plan.tagsSeen,
            items: results.map(({ request: _request, ...r }) => r),
            errors: plan.errors,
          },
          null,
          2,
        ),
      ) + '\n',
    );
  } else {
    for (const r of results) {
      out(
        `${r.outcome.padEnd(12)} ${r.source} → ${c.target}/${r.target}  ${r.digest ?? r.sourceDigest}${r.reason ? ` (new ${r.reason})` : ''}${r.error ? `  ${r.error}` : ''}`,
      );
    }
    for (const e of plan.errors)
      out(`error        rule ${e.rule}${e.tag ? ` tag ${e.tag}` : ''}: [${e.code}] ${e.message}`);
    const count = (o: string) => results.filter((r) => r.outcome === o).length;
    out(
      `${c.dryRun ? 'dry run: ' : ''}${plan.rules} rule(s), ${plan.tagsSeen} tag(s) seen${plan.tagsInvalid ? ` (${plan.tagsInvalid} not valid tags, left out)` : ''}, ${results.length} selected: ` +
        `${count('imported')} imported, ${count('would import')} to import, ${count('unchanged')} unchanged, ` +
        `${count('failed') + plan.errors.length} failed`,
    );
  }
}

/** The progress line of `sync` on a terminal: one refreshed line, cleared before the results print. */
class SyncProgress {
  private tags = 0;
  private toImport = 0;
  private active = 0;
  private done = 0;
  private last = 0;

  constructor(private readonly out: NodeJS.WritableStream | undefined) {}

  compared(): void {
    this.tags++;
    this.draw();
  }

  plan(toImport: number): void {
    this.toImport = toImport;
    this.draw(true);
  }

  running(delta: 1 | -1): void {
    this.active += delta;
    if (delta < 0) this.done++;
    this.draw(delta < 0);
  }

  end(): void {
    if (this.out) this.out.write('\r\x1b[K');
  }

  private draw(force = false): void {
    const now = Date.now();
    if (!this.out || (!force && now - this.last < 200)) return;
    this.last = now;
    const imports = this.toImport ? `, imports: ${this.active} running, ${this.done}/${this.toImport} done` : '';
    this.out.write(`\r\x1b[Ksync: ${this.tags} tag(s) compared${imports}`);
  }
}
