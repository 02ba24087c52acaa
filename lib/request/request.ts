/**
 * The import request, one schema for the HTTP body and for messages users drop on the queue.
 * Validation answers with the first problem found, as `{ code, message, target }` naming the field,
 * so a 400 tells the caller exactly what to change. Unknown fields are refused: a misspelt `imgaes`
 * must not silently import under the source's own name.
 */
import * as z from 'zod';
import { isNetworkRestricted, isResourceId, parseRegistryResourceId, type ResolvedRegistry } from '../azure/arm.js';
import { azureSettings, registryResolver } from '../azure/clients.js';
import { STATIC_TOKEN_LABEL } from '../azure/credentials.js';
import { AzureError, networkDenied } from '../azure/errors.js';
import type { Config } from '../config.js';
import { targetName, targetRefs } from '../engine/targets.js';
import { OciImportError, type ErrorCode } from '../errors.js';
import { parsePlatform } from '../oci/manifest.js';
import { MEDIA_TYPE } from '../oci/referrers.js';
import {
  InvalidReferenceError,
  formatReference,
  normalizeRegistry,
  parseReference,
  parseRepositoryTag,
  validateRegistry,
  type Reference,
} from '../oci/reference.js';
import { checkBoundSource, isBound } from '../policy/private-sources.js';
import { checkSource, credentialAllows, SourceNotAllowedError, systemLookup, type Lookup } from '../policy/sources.js';
import { repositoryAllowed } from '../policy/targets.js';
import type { ValidatedImport } from '../store/types.js';

/** Request bodies larger than this are refused with 413 before parsing. */
export const MAX_REQUEST_BYTES = 64 * 1024;
/**
 * Deepest nesting of arrays and objects a request may have: a request is an object of strings and arrays of strings
 * (depth 2). 64 KiB of `[` is 30,000 levels, which recursive code (hashing a body, writing it as JSON) cannot walk.
 */
export const MAX_JSON_DEPTH = 8;

/** Whether `value` nests arrays and objects deeper than `max` (walked without recursion). */
export function nestedDeeper(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

function checkDepth(value: unknown): void {
  if (nestedDeeper(value, MAX_JSON_DEPTH)) {
    throw new RequestError(
      400,
      'JSON_TOO_DEEP',
      `the request nests arrays or objects more than ${MAX_JSON_DEPTH} levels deep; an import request is an object of strings and arrays of strings`,
    );
  }
}

export const importRequestSchema = z.strictObject({
  source: z.string().min(1).max(1024),
  images: z.array(z.string().min(1).max(512)).max(50).optional(),
  repository: z.string().min(1).max(255).optional(),
  registry: z.string().min(1).max(1024).optional(),
  target: z.string().min(1).max(255).optional(),
  username: z.string().min(1).max(1024).optional(),
  password: z
    .string()
    .min(1)
    .max(16 * 1024)
    .optional(),
  credential: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/)
    .optional(),
  force: z.boolean().optional(),
  platforms: z.array(z.string().min(3).max(64)).max(20).optional(),
  includeReferrers: z.boolean().optional(),
  referrerTypes: z
    .array(z.string().regex(MEDIA_TYPE, 'must be a media type such as application/vnd.dev.cosign.artifact.sig.v1+json'))
    .min(1)
    .max(20)
    .optional(),
});

export type ImportRequestBody = z.infer<typeof importRequestSchema>;

export type { ValidatedImport } from '../store/types.js';

/** What a deployment without TARGET_REGISTRY says: at start-up (functions/imports.ts) and to every POST. */
export const TARGET_REGISTRY_NOT_SET =
  'this deployment has no target registry: set the setting TARGET_REGISTRY to the login server ' +
  'imports go to (e.g. myregistry.azurecr.io; locally: TARGET_REGISTRY=127.0.0.1:5000 INSECURE_REGISTRIES=127.0.0.1:5000 npm start)';

export class RequestError extends OciImportError {
  override name = 'RequestError';
  constructor(
    readonly status: number,
    code: ErrorCode,
    message: string,
    readonly target?: string,
  ) {
    // Bad input stays bad (4xx); a 5xx is the service's own trouble, worth another attempt.
    super(code, message, { temporary: status >= 500, side: 'request' });
  }
  toJSON(): { error: { code: string; message: string; target?: string } } {
    return { error: { code: this.code, message: this.message, ...(this.target ? { target: this.target } : {}) } };
  }
}

const FIELDS = Object.keys(importRequestSchema.shape);

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}

function suggestion(key: string): string {
  const best = FIELDS.map((f) => ({ f, d: distance(key.toLowerCase(), f.toLowerCase()) })).sort((x, y) => x.d - y.d)[0];
  return best && best.d <= 2 ? `; did you mean "${best.f}"?` : `; allowed fields: ${FIELDS.join(', ')}`;
}

function schemaError(issues: z.core.$ZodIssue[], body: Record<string, unknown>): RequestError {
  const unknown = issues.find((i) => i.code === 'unrecognized_keys');
  if (unknown && unknown.code === 'unrecognized_keys') {
    const key = unknown.keys[0]!;
    return new RequestError(400, 'UNKNOWN_FIELD', `unknown field "${key}"${suggestion(key)}`, key);
  }
  const issue = issues[0]!;
  const target = issue.path.map(String).join('.') || undefined;
  if (issue.code === 'invalid_type' && issue.path.length === 1 && body[String(issue.path[0])] === undefined) {
    return new RequestError(400, 'MISSING_FIELD', `field "${target}" is required`, target);
  }
  if (issue.code === 'invalid_type') {
    return new RequestError(
      400,
      'INVALID_TYPE',
      `field "${target}" must be ${issue.expected === 'array' ? 'an array' : `a ${issue.expected}`}`,
      target,
    );
  }
  return new RequestError(400, 'INVALID_FIELD', `field "${target}": ${issue.message}`, target);
}

function referenceError(err: unknown, field: string): RequestError {
  if (err instanceof InvalidReferenceError)
    return new RequestError(400, 'INVALID_REFERENCE', `${field}: ${err.message}`, field);
  throw err;
}

export interface ValidateOptions {
  readonly config: Config;
  /** Inline passwords are accepted over HTTP (then encrypted), never in a queue message. */
  readonly origin: 'http' | 'queue';
  readonly lookup?: Lookup;
  /** Resolves a registry given by ARM resource ID; default: Resource Manager with the app's managed identity. */
  readonly resolveRegistry?: (resourceId: string) => Promise<ResolvedRegistry>;
}

/** A registry resource ID → its login server, through Resource Manager; refusals name the field. */
async function resolveResourceId(resourceId: string, o: ValidateOptions): Promise<ResolvedRegistry> {
  try {
    const { id } = parseRegistryResourceId(resourceId);
    return await (o.resolveRegistry ?? registryResolver(azureSettings(o.config)))(id);
  } catch (err) {
    // Temporary failures (ARM 5xx, the identity endpoint unreachable) propagate: HTTP 500, the queue retries.
    if (err instanceof AzureError && !err.temporary) throw new RequestError(400, err.code, err.message, 'registry');
    throw err;
  }
}

/** Parses JSON text of at most MAX_REQUEST_BYTES; then `validateImportRequest`. */
export function parseRequestText(text: string): unknown {
  if (Buffer.byteLength(text, 'utf8') > MAX_REQUEST_BYTES) {
    throw new RequestError(413, 'BODY_TOO_LARGE', `the request body is larger than ${MAX_REQUEST_BYTES} bytes`);
  }
  if (!text.trim())
    throw new RequestError(
      400,
      'INVALID_JSON',
      'the request body is empty; send a JSON object like {"source": "docker.io/library/nginx:1.27"}',
    );
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (err) {
    throw new RequestError(400, 'INVALID_JSON', `the request body is not valid JSON: ${(err as Error).message}`);
  }
  checkDepth(value);
  return value;
}

export async function validateImportRequest(body: unknown, o: ValidateOptions): Promise<ValidatedImport> {
  // a queued request arrives parsed: the same bound before anything walks it
  checkDepth(body);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new RequestError(
      400,
      'INVALID_BODY',
      'the request must be a JSON object like {"source": "docker.io/library/nginx:1.27"}',
    );
  }
  const parsed = importRequestSchema.safeParse(body);
  if (!parsed.success) throw schemaError(parsed.error.issues, body as Record<string, unknown>);
  const req = parsed.data;

  const { source, registry, resolved } = await sourceOf(req, o);
  checkNames(req);
  if (req.referrerTypes && !req.includeReferrers) {
    throw new RequestError(
      400,
      'CONFLICTING_FIELDS',
      'referrerTypes selects which referrers includeReferrers copies: set "includeReferrers": true as well',
      'referrerTypes',
    );
  }
  const target = targetOf(req, o.config);
  const refs = targetRefs({ source: formatReference(source), images: req.images, repository: req.repository });
  for (const [i, ref] of refs.entries()) {
    if (!repositoryAllowed(ref.repository, o.config.targetRepositories)) {
      const images = req.images?.length ?? 0;
      const field = i < images ? `images[${i}]` : req.repository ? 'repository' : 'source';
      throw new RequestError(
        400,
        'REPOSITORY_NOT_ALLOWED',
        `repository ${ref.repository} is outside what this deployment may write (TARGET_REPOSITORIES: ${o.config.targetRepositories.join(', ')})`,
        field,
      );
    }
  }
  checkCredentials(req, source, resolved, o);
  await checkSourceAllowed(source, o, resolved?.id);

  return {
    source: registry ? formatReference(source) : req.source,
    sourceRegistry: source.registry,
    target,
    images: req.images,
    repository: req.repository,
    force: req.force ?? false,
    platforms: req.platforms,
    ...(req.includeReferrers
      ? { includeReferrers: true, ...(req.referrerTypes ? { referrerTypes: req.referrerTypes } : {}) }
      : {}),
    credential: req.credential !== undefined ? o.config.credentials.get(req.credential.toLowerCase())!.name : undefined,
    inlineCredentials:
      req.password !== undefined ? { username: req.username ?? '', password: req.password } : undefined,
    ...(resolved ? { registryResourceId: resolved.id } : {}),
    refs,
    targets: refs.map((r) => targetName(target, r)),
  };
}

/** The source reference, with a registry given apart (login server or ARM resource ID) folded in. */
async function sourceOf(
  req: ImportRequestBody,
  o: ValidateOptions,
): Promise<{ source: Reference; registry?: string; resolved?: ResolvedRegistry }> {
  // A registry may be given by ARM resource ID (as `az acr import --registry /subscriptions/…`).
  let registry = req.registry;
  let resolved: ResolvedRegistry | undefined;
  if (registry !== undefined && isResourceId(registry)) {
    resolved = await resolveResourceId(registry, o);
    registry = resolved.loginServer;
  }
  if (registry) {
    try {
      validateRegistry(registry);
    } catch (err) {
      throw referenceError(err, 'registry');
    }
  }
  let source: Reference;
  try {
    source = parseReference(req.source, registry ? { defaultRegistry: registry } : {});
  } catch (err) {
    throw referenceError(err, 'source');
  }
  if (registry && source.registry !== normalizeRegistry(registry)) {
    throw new RequestError(
      400,
      'CONFLICTING_FIELDS',
      `source names registry ${source.registry} but registry is ${registry}${resolved ? ` (${resolved.id})` : ''}; give the host in one of them only`,
      'registry',
    );
  }
  return { source, registry, resolved };
}

/** `images`, `repository` and `platforms` are well-formed. */
function checkNames(req: ImportRequestBody): void {
  for (const [i, image] of (req.images ?? []).entries()) {
    const field = `images[${i}]`;
    const t = parseOr(image, field);
    if (t.digest)
      throw new RequestError(
        400,
        'INVALID_REFERENCE',
        `${field}: "${image}" has a digest; the digest comes from the source — give repository:tag, or use repository to import by digest only`,
        field,
      );
  }
  if (req.repository !== undefined) {
    const r = parseOr(req.repository, 'repository');
    if (r.tag || r.digest)
      throw new RequestError(
        400,
        'INVALID_REFERENCE',
        `repository "${req.repository}" must be a repository name without tag or digest; use images for repository:tag`,
        'repository',
      );
  }
  for (const [i, p] of (req.platforms ?? []).entries()) {
    try {
      parsePlatform(p);
    } catch (err) {
      throw new RequestError(400, 'INVALID_PLATFORM', `platforms[${i}]: ${(err as Error).message}`, `platforms[${i}]`);
    }
  }
}

function parseOr(value: string, field: string): ReturnType<typeof parseRepositoryTag> {
  try {
    return parseRepositoryTag(value);
  } catch (err) {
    throw referenceError(err, field);
  }
}

/** This deployment's target registry; a request naming another is refused. */
function targetOf(req: ImportRequestBody, config: Config): string {
  const configured = config.targetRegistry ? normalizeRegistry(config.targetRegistry) : undefined;
  // 503: the service cannot take imports until an operator sets it (no Retry-After: it will not fix itself).
  if (!configured) throw new RequestError(503, 'TARGET_REGISTRY_NOT_SET', TARGET_REGISTRY_NOT_SET);
  if (req.target !== undefined && normalizeRegistry(req.target) !== configured) {
    throw new RequestError(
      400,
      'TARGET_NOT_ALLOWED',
      `target ${req.target} is not this deployment's registry (${configured}); leave target out`,
      'target',
    );
  }
  return configured;
}

/** Inline credentials (HTTP only, stored sealed) or a named credential bound to the source's registry. */
function checkCredentials(
  req: ImportRequestBody,
  source: Reference,
  resolved: ResolvedRegistry | undefined,
  o: ValidateOptions,
): void {
  // A password without username is an Entra ID access token (typically of another tenant), exchanged at the registry.
  if (req.username !== undefined && req.password === undefined) {
    throw new RequestError(
      400,
      'MISSING_FIELD',
      'username needs a password (a password alone is taken as an Entra ID access token)',
      'password',
    );
  }
  if (resolved && req.username === undefined && req.password !== undefined && isNetworkRestricted(resolved)) {
    const err = networkDenied({
      registry: resolved.loginServer,
      role: 'source',
      identity: STATIC_TOKEN_LABEL,
      crossTenant: true,
      resourceId: resolved.id,
    });
    throw new RequestError(400, err.code, err.message, 'registry');
  }
  if (req.password !== undefined && o.origin === 'queue') {
    throw new RequestError(
      400,
      'SECRET_IN_QUEUE',
      'a queue message must not carry a password; configure a named credential and send {"credential": "<name>"}',
      'password',
    );
  }
  if (req.password !== undefined && req.credential !== undefined) {
    throw new RequestError(
      400,
      'CONFLICTING_FIELDS',
      'give either username/password or credential, not both',
      'credential',
    );
  }
  if (req.password !== undefined && !o.config.credentialKey) {
    throw new RequestError(
      400,
      'CREDENTIALS_NOT_ACCEPTED',
      'this deployment has no CREDENTIAL_KEY to store inline credentials; use a named credential ("credential")',
      'password',
    );
  }
  if (req.credential === undefined) return;
  const credential = o.config.credentials.get(req.credential.toLowerCase());
  if (!credential) {
    throw new RequestError(
      400,
      'UNKNOWN_CREDENTIAL',
      `no credential named "${req.credential}" is configured (settings REGISTRY_CREDENTIALS__${req.credential}__USERNAME, __PASSWORD and __REGISTRIES)`,
      'credential',
    );
  }
  if (!credentialAllows(credential, source.registry)) {
    throw new RequestError(
      400,
      'CREDENTIAL_NOT_ALLOWED',
      `credential "${credential.name}" may not be used for ${source.registry}: it is bound to ${credential.registries.join(', ')} (REGISTRY_CREDENTIALS__${credential.name}__REGISTRIES)`,
      'credential',
    );
  }
}

/** ALLOWED_SOURCES and the address guard; a registry named by a resource ID bound in PRIVATE_SOURCE_REGISTRIES may resolve privately. */
async function checkSourceAllowed(source: Reference, o: ValidateOptions, resourceId?: string): Promise<void> {
  try {
    if (resourceId && isBound(o.config, resourceId))
      await checkBoundSource(source.registry, resourceId, o.config.allowedSources, o.lookup ?? systemLookup);
    else await checkSource(source.registry, o.config.allowedSources, o.lookup);
  } catch (err) {
    if (err instanceof SourceNotAllowedError)
      throw new RequestError(err.temporary ? 503 : 400, err.code, err.message, 'source');
    throw err;
  }
}
