/**
 * The status of an import as the HTTP API answers it (GET /imports/{id}, the list, a cancel, a repeated POST),
 * defined once, here, as zod schemas. Everything else is derived from them:
 * - the TypeScript types the service returns (`ImportStatusView`, lib/service/service.ts) and the CLI reads
 *   (lib/cli/client.ts, which also parses every answer with these schemas);
 * - the OpenAPI document's `ImportStatus`, `ImportList` and `Accepted` schemas (`statusViewJsonSchemas`, used by
 *   lib/api/openapi.ts); test/unit/api/status-view.test.ts checks the document carries exactly these and that
 *   real handler answers parse.
 * A leaf module: it imports zod and nothing of lib/, so storage, service, HTTP functions and CLI can all use it.
 */
import * as z from 'zod';

/** The states of an import; `succeeded`, `failed` and `canceled` are final. */
export const JOB_STATUSES = ['queued', 'running', 'waiting', 'succeeded', 'failed', 'canceled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

const count = z.int().min(0);
const instant = z.iso.datetime({ offset: true });

export const jobStatusSchema = z.enum(JOB_STATUSES);

export const progressSchema = z.strictObject({
  manifests: count,
  blobsTotal: count,
  blobsDone: count,
  bytesTotal: count,
  bytesCopied: count.meta({ description: 'Bytes present in the target so far (copied, mounted or already there).' }),
});

export const referrerViewSchema = z.strictObject({
  digest: z.string(),
  artifactType: z.string().optional(),
  subject: z
    .string()
    .meta({ description: 'The digest of the manifest it refers to (a cosign tag: the digest its name carries).' }),
  tag: z
    .string()
    .optional()
    .meta({ description: 'A cosign tag (`sha256-<hex>.sig`, `.att`, `.sbom`) it is copied as.' }),
});

export const errorViewSchema = z.strictObject({ code: z.string(), message: z.string() });

/** The fields of a status view; `importStatusSchema` requires the first seven. */
const statusShape = {
  id: z.uuid(),
  status: jobStatusSchema,
  source: z.string(),
  targets: z.array(z.string()),
  createdAt: instant,
  updatedAt: instant,
  progress: progressSchema,
  digest: z.string().optional(),
  notes: z.array(z.string()).optional(),
  referrers: z.array(referrerViewSchema).optional().meta({
    description:
      'With `includeReferrers`, once planned: the signatures, SBOMs and attestations the import copies (all on the target once it succeeded).',
  }),
  waitingUntil: instant.optional().meta({ description: 'Status `waiting`: when a registry said to come back.' }),
  error: errorViewSchema.optional().meta({ description: 'Why it failed (`failed`), or `CANCELED`.' }),
  caller: z
    .strictObject({
      oid: z.string().optional().meta({ description: 'Object ID of the user or service principal.' }),
      appid: z.string().optional().meta({ description: 'Client application ID (`appid`, or `azp` of a v2.0 token).' }),
    })
    .optional()
    .meta({ description: 'With AUTH_MODE=entra: who created the import, from the token (never the token).' }),
  stalled: z.literal(true).optional().meta({
    description:
      'Queued or running, but nothing has updated it for longer than a step plus the queue lease after which a step lost with its worker is delivered again.',
  }),
};

export const importStatusSchema = z.strictObject(statusShape);

export const importListSchema = z.strictObject({
  value: z.array(importStatusSchema),
  nextLink: z.url().optional().meta({ description: 'The next page; absent on the last.' }),
});

/** A new import: id, status and status URL; a repeated request (same Repeatability-Request-ID): its whole status as well. */
export const acceptedSchema = z
  .strictObject({
    ...importStatusSchema.partial().shape,
    id: statusShape.id,
    status: statusShape.status,
    statusUrl: z.url(),
  })
  .meta({
    description:
      "A new import: `id`, `status`, `statusUrl`. A repeated request (same Repeatability-Request-ID): the import's whole status as well.",
  });

/** Makes every field, array and nested object of a parsed value read-only (what the service hands out). */
type Frozen<T> = T extends readonly (infer U)[]
  ? readonly Frozen<U>[]
  : T extends object
    ? { readonly [K in keyof T]: Frozen<T[K]> }
    : T;

export type JobProgress = Frozen<z.infer<typeof progressSchema>>;
export type ReferrerView = Frozen<z.infer<typeof referrerViewSchema>>;
export type ImportStatusView = Frozen<z.infer<typeof importStatusSchema>>;
export type ImportList = Frozen<z.infer<typeof importListSchema>>;
export type AcceptedView = Frozen<z.infer<typeof acceptedSchema>>;

/** The OpenAPI components these schemas become (JSON Schema 2020-12), nested ones by `$ref` to their component. */
export function statusViewJsonSchemas(): Record<'ImportStatus' | 'ImportList' | 'Accepted', Record<string, unknown>> {
  const registry = z.registry<{ id: string }>();
  registry.add(importStatusSchema, { id: 'ImportStatus' });
  registry.add(importListSchema, { id: 'ImportList' });
  registry.add(acceptedSchema, { id: 'Accepted' });
  const { schemas } = z.toJSONSchema(registry, { target: 'draft-2020-12', uri: (id) => `#/components/schemas/${id}` });
  const component = (id: string): Record<string, unknown> => {
    const { $schema: _s, $id: _i, ...rest } = schemas[id] as Record<string, unknown>;
    return rest;
  };
  return {
    ImportStatus: component('ImportStatus'),
    ImportList: component('ImportList'),
    Accepted: component('Accepted'),
  };
}

/** States an import never leaves. */
export const ENDED: ReadonlySet<string> = new Set<JobStatus>(['succeeded', 'failed', 'canceled']);
