/**
 * Sync rules: which tags of which source repositories to keep mirrored. JSON, validated with the same
 * schema library as import requests; a bad file is refused with a message naming the line.
 *
 *   { "rules": [ { "source": "docker.io/library/nginx", "target": "mirror/nginx",
 *                  "tags": { "include": ["^1\\.2[0-9]\\."], "exclude": ["-alpine$"], "semver": ">=1.26", "keepNewest": 5 },
 *                  "platforms": ["linux/amd64"], "credential": "dockerhub", "referrers": true } ] }
 */
import { validRange } from 'semver';
import * as z from 'zod';
import type { NamedCredential } from '../config.js';
import { repositoryAllowed } from '../policy/targets.js';
import { OciImportError } from '../errors.js';
import { parsePlatform } from '../oci/manifest.js';
import { MEDIA_TYPE } from '../oci/referrers.js';
import { InvalidReferenceError, parseReference, parseRepositoryTag } from '../oci/reference.js';
import { credentialAllows } from '../policy/sources.js';
import { compilePattern } from './patterns.js';

/** A tag pattern, compiled as it will run (lib/sync/patterns.ts): RE2 syntax, linear time. */
const regex = z
  .string()
  .min(1)
  .max(512)
  .superRefine((s, ctx) => {
    try {
      compilePattern(s);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

export const ruleSchema = z.strictObject({
  source: z.string().min(1).max(512),
  target: z.string().min(1).max(255).optional(),
  tags: z
    .strictObject({
      include: z.array(regex).max(50).optional(),
      exclude: z.array(regex).max(50).optional(),
      semver: z
        .string()
        .min(1)
        .max(256)
        .refine((r) => validRange(r) !== null, 'not a valid semver range (e.g. ">=1.26 <2", "^7")')
        .optional(),
      keepNewest: z.number().int().min(1).max(1000).optional(),
    })
    .optional(),
  platforms: z.array(z.string().min(3).max(64)).max(20).optional(),
  credential: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/)
    .optional(),
  /** Copy each tag's referrers (signatures, SBOMs, attestations) and re-check them on unchanged tags. */
  referrers: z.boolean().optional(),
  referrerTypes: z
    .array(z.string().regex(MEDIA_TYPE, 'must be a media type such as application/vnd.dev.cosign.artifact.sig.v1+json'))
    .min(1)
    .max(20)
    .optional(),
});

export const rulesFileSchema = z.union([
  z.strictObject({ rules: z.array(ruleSchema).min(1).max(500) }),
  z.array(ruleSchema).min(1).max(500),
]);

export type SyncRule = z.infer<typeof ruleSchema>;

export class RulesError extends OciImportError {
  override name = 'RulesError';
  constructor(
    readonly origin: string,
    readonly line: number | undefined,
    readonly path: string,
    reason: string,
  ) {
    super('INVALID_RULES', `${origin}${line !== undefined ? `:${line}` : ''}: ${path ? `${path}: ` : ''}${reason}`, {
      side: 'config',
    });
  }
}

/** What the deployment allows, checked against every rule when the rules are read. */
export interface RulePolicy {
  readonly credentials: ReadonlyMap<string, NamedCredential>;
  readonly targetRepositories: readonly string[];
}

/**
 * Line (1-based) where the value at `path` starts in JSON `text`; undefined when it cannot be found.
 * A small scanner over strings, brackets and keys — enough to point a person at the right line. It stays
 * one function on purpose (a tokenizer whose helpers share one cursor), a little over lib's 80 lines.
 */
// eslint-disable-next-line max-lines-per-function -- a tokenizer: its closures share the cursor
export function lineOf(text: string, path: readonly (string | number)[]): number | undefined {
  let i = 0;
  let line = 1;
  const ws = (): void => {
    while (i < text.length && /\s/.test(text[i]!)) {
      if (text[i] === '\n') line++;
      i++;
    }
  };
  const str = (): string => {
    let out = '';
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\') {
        out += text[i + 1];
        i += 2;
      } else out += text[i++];
    }
    i++;
    return out;
  };
  const skip = (): void => {
    ws();
    const c = text[i];
    if (c === '"') return void str();
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      ws();
      while (i < text.length && text[i] !== close) {
        if (c === '{') {
          str();
          ws();
          i++; // ':'
        }
        skip();
        ws();
        if (text[i] === ',') i++;
        ws();
      }
      i++;
      return;
    }
    while (i < text.length && !/[\s,\]}]/.test(text[i]!)) i++;
  };
  const find = (depth: number): number | undefined => {
    ws();
    if (depth === path.length) return line;
    const key = path[depth];
    const c = text[i];
    if (c === '{' && typeof key === 'string') {
      i++;
      ws();
      while (i < text.length && text[i] !== '}') {
        const k = str();
        ws();
        i++;
        if (k === key) return find(depth + 1);
        skip();
        ws();
        if (text[i] === ',') i++;
        ws();
      }
      return undefined;
    }
    if (c === '[' && typeof key === 'number') {
      i++;
      for (let n = 0; ; n++) {
        ws();
        if (i >= text.length || text[i] === ']') return undefined;
        if (n === key) return find(depth + 1);
        skip();
        ws();
        if (text[i] === ',') i++;
      }
    }
    return undefined;
  };
  try {
    return find(0);
  } catch {
    return undefined;
  }
}

function formatPath(path: readonly (string | number | symbol)[]): string {
  return path.map((p, n) => (typeof p === 'number' ? `[${p}]` : `${n ? '.' : ''}${String(p)}`)).join('');
}

/**
 * Parses and validates rules JSON; `origin` names the file or setting in messages. With a policy, a rule
 * naming an unknown credential, a credential not bound to its source, or a target repository outside
 * TARGET_REPOSITORIES is refused too.
 */
export function parseRules(text: string, origin: string, policy?: RulePolicy): SyncRule[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const pos = /position (\d+)/.exec((err as Error).message);
    const line = pos ? text.slice(0, Number(pos[1])).split('\n').length : undefined;
    throw new RulesError(origin, line, '', `not valid JSON: ${(err as Error).message}`);
  }
  const parsed = rulesFileSchema.safeParse(json);
  if (!parsed.success) {
    // The union reports both branches: prefer the issues of the branch that matches the file's shape.
    const issues = parsed.error.issues.flatMap((i) => (i.code === 'invalid_union' ? i.errors.flat() : [i]));
    const issue = issues.find((i) => Array.isArray(json) === (typeof i.path[0] === 'number')) ?? issues[0]!;
    const path = Array.isArray(json) || issue.path[0] === 'rules' ? issue.path : ['rules', ...issue.path];
    const reason = issue.code === 'unrecognized_keys' ? `unknown field "${issue.keys[0]}"` : issue.message;
    const keyPath = issue.code === 'unrecognized_keys' ? [...path, issue.keys[0]!] : path;
    throw new RulesError(
      origin,
      lineOf(text, keyPath as (string | number)[]) ?? lineOf(text, path as (string | number)[]),
      formatPath(keyPath),
      reason,
    );
  }
  const rules = Array.isArray(parsed.data) ? parsed.data : parsed.data.rules;
  rules.forEach((rule, n) => {
    const base = Array.isArray(parsed.data) ? [n] : ['rules', n];
    const fail = (field: string, reason: string): never => {
      throw new RulesError(origin, lineOf(text, [...base, field]), formatPath([...base, field]), reason);
    };
    try {
      const ref = parseReference(rule.source);
      if (ref.tag || ref.digest) fail('source', 'a rule names a repository; select its tags with "tags"');
    } catch (err) {
      if (err instanceof InvalidReferenceError) fail('source', err.message);
      throw err;
    }
    if (rule.target) {
      try {
        const t = parseRepositoryTag(rule.target);
        if (t.tag || t.digest) fail('target', 'target is a repository; tags keep their source names');
      } catch (err) {
        if (err instanceof InvalidReferenceError) fail('target', err.message);
        throw err;
      }
    }
    for (const p of rule.platforms ?? []) {
      try {
        parsePlatform(p);
      } catch (err) {
        fail('platforms', (err as Error).message);
      }
    }
    if (rule.referrerTypes && !rule.referrers)
      fail('referrerTypes', 'referrerTypes selects which referrers "referrers": true copies; set it too');
    if (policy) checkPolicy(rule, policy, fail);
  });
  return rules;
}

function checkPolicy(rule: SyncRule, policy: RulePolicy, fail: (field: string, reason: string) => never): void {
  const source = parseReference(rule.source);
  const target = rule.target ?? source.repository;
  if (!repositoryAllowed(target, policy.targetRepositories)) {
    fail(
      rule.target ? 'target' : 'source',
      `target repository ${target} is outside TARGET_REPOSITORIES (${policy.targetRepositories.join(', ')})`,
    );
  }
  if (!rule.credential) return;
  const credential = policy.credentials.get(rule.credential.toLowerCase());
  if (!credential) {
    fail(
      'credential',
      `no credential named "${rule.credential}" (settings REGISTRY_CREDENTIALS__${rule.credential}__USERNAME, __PASSWORD and __REGISTRIES)`,
    );
  }
  if (!credentialAllows(credential, source.registry)) {
    fail(
      'credential',
      `credential "${credential.name}" may not be used for ${source.registry}: it is bound to ${credential.registries.join(', ')} (REGISTRY_CREDENTIALS__${credential.name}__REGISTRIES)`,
    );
  }
}
