/**
 * `oci-import sync --rules FILE`: one sync pass in this process. Plans by HEAD comparison, then runs
 * each import with the same engine as `import`; `--dry-run` prints the plan and writes nothing.
 */
import { readFile } from 'node:fs/promises';
import type { Config } from '../config.js';
import { mapLimited } from '../engine/concurrency.js';
import { engineFromConfig, runImport } from '../engine/engine.js';
import { PartPool } from '../engine/part-reader.js';
import { errorCode } from '../errors.js';
import { parseReference } from '../oci/reference.js';
import type { RegistryClient } from '../oci/registry.js';
import type { Registries } from '../registries.js';
import { passDeadline, planSync, type SyncItem } from '../sync/pass.js';
import { parseRules, RulesError } from '../sync/rules.js';

export interface SyncCommand {
  readonly rulesFile: string;
  readonly dryRun: boolean;
  readonly json: boolean;
  readonly config: Config;
  readonly registries: Registries;
  readonly target: string;
  readonly io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };
  readonly redact: (text: string) => string;
}

export async function runSync(c: SyncCommand): Promise<number> {
  let text: string;
  try {
    text = await readFile(c.rulesFile, 'utf8');
  } catch (err) {
    throw new RulesError(c.rulesFile, undefined, '', `cannot read the rules file: ${(err as Error).message}`);
  }
  const rules = parseRules(text, c.rulesFile, c.config);
  const sourceClient = (registry: string, name?: string): RegistryClient => {
    const credential = name ? c.config.credentials.get(name.toLowerCase()) : undefined;
    return c.registries.source(registry, credential && { kind: 'named', credential }).client;
  };
  const targetClient = c.registries.target(c.target).client;
  const deadline = passDeadline(c.config);
  const plan = await planSync(rules, { target: c.target, targetClient, sourceClient, maxTags: c.config.maxTags, concurrency: c.config.syncConcurrency, signal: deadline.signal })
    .finally(deadline.clear);
  const out = (line: string): void => void c.io.stdout.write(c.redact(line) + '\n');

  // The imports run SYNC_CONCURRENCY at once, their ranged GETs within one shared part pool (bounded memory).
  const partPool = new PartPool(2 * c.config.fetchConcurrency, c.config.copyMemory);
  const results = await mapLimited(plan.items, c.config.syncConcurrency, async (item): Promise<SyncItem & { outcome: string; digest?: string; error?: string }> => {
    if (item.action === 'unchanged' || c.dryRun) return { ...item, outcome: item.action === 'unchanged' ? 'unchanged' : 'would import' };
    try {
      const src = parseReference(item.request!.source);
      const engine = engineFromConfig(c.config, { source: sourceClient(src.registry, rules[item.rule]!.credential), target: targetClient }, { partPool });
      const r = await runImport(engine, item.request!, { blobConcurrency: c.config.blobConcurrency, stepMs: c.config.stepBudgetSeconds * 1000 });
      return { ...item, outcome: 'imported', digest: r.digest };
    } catch (err) {
      return { ...item, outcome: 'failed', error: `[${errorCode(err)}] ${(err as Error).message}` };
    }
  });

  if (c.json) {
    c.io.stdout.write(c.redact(JSON.stringify({
      dryRun: c.dryRun, rules: plan.rules, tagsSeen: plan.tagsSeen,
      items: results.map(({ request: _request, ...r }) => r), errors: plan.errors,
    }, null, 2)) + '\n');
  } else {
    for (const r of results) {
      out(`${r.outcome.padEnd(12)} ${r.source} → ${c.target}/${r.target}  ${r.digest ?? r.sourceDigest}${r.reason ? ` (new ${r.reason})` : ''}${r.error ? `  ${r.error}` : ''}`);
    }
    for (const e of plan.errors) out(`error        rule ${e.rule}${e.tag ? ` tag ${e.tag}` : ''}: [${e.code}] ${e.message}`);
    const count = (o: string) => results.filter((r) => r.outcome === o).length;
    out(`${c.dryRun ? 'dry run: ' : ''}${plan.rules} rule(s), ${plan.tagsSeen} tag(s) seen${plan.tagsInvalid ? ` (${plan.tagsInvalid} not valid tags, left out)` : ''}, ${results.length} selected: `
      + `${count('imported')} imported, ${count('would import')} to import, ${count('unchanged')} unchanged, `
      + `${count('failed') + plan.errors.length} failed`);
  }
  return results.some((r) => r.outcome === 'failed') || plan.errors.length ? 1 : 0;
}
