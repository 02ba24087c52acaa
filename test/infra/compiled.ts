/**
 * The compiled ARM template (dist/infra/main.json) for the infra tests: built by `scripts/infra-build.mjs` when it
 * is missing or older than any file under infra/, and walked as plain JSON (languageVersion 1.0 arrays and 2.0
 * symbolic-name objects alike, nested module deployments included).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const compiledPath = join(root, 'dist', 'infra', 'main.json');
const buildScript = join(root, 'scripts', 'infra-build.mjs');
/** scripts/infra-build.mjs exits with this code when no Bicep compiler can be had on this machine. */
const EXIT_NO_COMPILER = 3;

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface Template extends JsonObject {
  parameters: { [name: string]: JsonObject };
  outputs: { [name: string]: JsonObject };
}

export interface Resource extends JsonObject {
  type: string;
  /** Symbolic name (languageVersion 2.0) or index. */
  symbol: string;
  /** The module (nested deployment) chain it sits in, '' for main.bicep. */
  module: string;
}

export type BuildResult = { status: 'ok'; output: string } | { status: 'unavailable' | 'failed'; output: string };

function newestInfraFile(dir = join(root, 'infra')): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestInfraFile(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Compiles the templates unless dist/infra/main.json is newer than every file under infra/ (and `force` is not set). */
export function ensureCompiled(o: { force?: boolean } = {}): BuildResult {
  if (!o.force && existsSync(compiledPath) && statSync(compiledPath).mtimeMs >= newestInfraFile()) {
    return { status: 'ok', output: `${compiledPath} is up to date` };
  }
  const r = spawnSync(process.execPath, [buildScript], { cwd: root, encoding: 'utf8', timeout: 600_000 });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`;
  if (r.status === 0 && existsSync(compiledPath)) return { status: 'ok', output };
  return { status: r.status === EXIT_NO_COMPILER ? 'unavailable' : 'failed', output };
}

export function loadTemplate(): Template {
  return JSON.parse(readFileSync(compiledPath, 'utf8')) as Template;
}

function entries(resources: Json | undefined): [string, JsonObject][] {
  if (Array.isArray(resources)) return resources.map((r, i) => [String(i), r as JsonObject]);
  if (resources && typeof resources === 'object') return Object.entries(resources) as [string, JsonObject][];
  return [];
}

/** Every resource the template and its nested module templates deploy (not `existing` ones), depth first. */
export function allResources(template: JsonObject, module = ''): Resource[] {
  const out: Resource[] = [];
  for (const [symbol, r] of entries(template.resources)) {
    if (r.existing !== true) out.push({ ...r, type: String(r.type), symbol, module });
    const nested = (r.properties as JsonObject | undefined)?.template as JsonObject | undefined;
    if (r.type === 'Microsoft.Resources/deployments' && nested) {
      out.push(...allResources(nested, module ? `${module}/${symbol}` : symbol));
    }
  }
  return out;
}

/** The nested template of a module of main.bicep, by its symbolic name. */
export function moduleTemplate(template: Template, symbol: string): Template {
  const found = entries(template.resources).find(([s]) => s === symbol);
  if (!found) throw new Error(`main.bicep has no module "${symbol}"`);
  return (found[1].properties as JsonObject).template as Template;
}

/** The value passed to a module's parameter in main.bicep. */
export function moduleParam(template: Template, symbol: string, param: string): Json {
  const found = entries(template.resources).find(([s]) => s === symbol);
  if (!found) throw new Error(`main.bicep has no module "${symbol}"`);
  const params = (found[1].properties as JsonObject).parameters as { [name: string]: { value: Json } };
  return params[param]?.value ?? null;
}

/** Names of the secure parameters of a template (securestring, secureObject). */
export function secureParams(template: Template): string[] {
  return Object.entries(template.parameters ?? {})
    .filter(([, p]) => /^secure/i.test(String(p.type)))
    .map(([name]) => name);
}

/** Every template in the tree: main first, then the nested module templates. */
export function allTemplates(template: Template): Template[] {
  const out: Template[] = [template];
  for (const [, r] of entries(template.resources)) {
    const nested = (r.properties as JsonObject | undefined)?.template as Template | undefined;
    if (r.type === 'Microsoft.Resources/deployments' && nested) out.push(...allTemplates(nested));
  }
  return out;
}
