/**
 * Plan an import once: resolve the source, walk its index, collect the unique blobs, refuse what
 * cannot be imported (too many manifests, schema 1, a tag that exists without `force`) before a
 * single byte is copied.
 */
import type { Digest } from '../oci/digest.js';
import { ImportError } from '../oci/errors.js';
import {
  isNonDistributable, manifestFrom, parseManifest, parsePlatform, platformMatches, platformString,
  type Descriptor, type Platform, type RawManifest,
} from '../oci/manifest.js';
import { normalizeRegistry, parseReference, parseRepositoryTag } from '../oci/reference.js';
import type { RegistryClient } from '../oci/registry.js';
import type { ImportPlan, ImportRequest, PlannedBlob, PlannedManifest, TargetRef } from './types.js';

/** Indexes nested deeper than this are refused (real images use one level; attestations two). */
const MAX_INDEX_DEPTH = 4;

export interface PlanOptions {
  readonly maxManifests: number;
  readonly source: RegistryClient;
  readonly target: RegistryClient;
}

/** The target names of a request: `images`, else `repository` (by digest), else the source's own name. */
export function targetRefs(req: ImportRequest, sourceRepository: string, sourceTag: string | undefined): TargetRef[] {
  const refs: TargetRef[] = [];
  for (const image of req.images ?? []) {
    const parsed = parseRepositoryTag(image);
    if (parsed.digest) {
      throw new ImportError('INVALID_REQUEST', `target image "${image}" has a digest; the digest always comes from the source — give repo:tag, or use repository to import by digest only`);
    }
    refs.push({ repository: parsed.repository, tag: parsed.tag ?? 'latest' });
  }
  if (req.repository) {
    parseRepositoryTag(req.repository);
    if (req.repository.includes(':') || req.repository.includes('@')) {
      throw new ImportError('INVALID_REQUEST', `repository "${req.repository}" must be a repository name without tag or digest`);
    }
    if (!refs.some((r) => r.repository === req.repository)) refs.push({ repository: req.repository });
  }
  if (refs.length === 0) refs.push(sourceTag ? { repository: sourceRepository, tag: sourceTag } : { repository: sourceRepository });
  return refs;
}

export async function plan(req: ImportRequest, opts: PlanOptions): Promise<ImportPlan> {
  const src = parseReference(req.source);
  const sourceTag = src.tag ?? (src.digest ? undefined : 'latest');
  const refs = targetRefs(req, src.repository, sourceTag);
  const filters: Platform[] = (req.platforms ?? []).map(parsePlatform);
  const notes: string[] = [];

  const reference = src.digest ?? sourceTag!;
  let root: RawManifest;
  try {
    root = await opts.source.getManifest(src.repository, reference);
  } catch (err) {
    if ((err as { status?: number }).status === 404) {
      throw new ImportError('SOURCE_NOT_FOUND', `${src.registry}/${src.repository}:${reference} was not found on the source registry`, false, { cause: err });
    }
    throw err;
  }

  const manifests: PlannedManifest[] = [];
  const blobs = new Map<Digest, PlannedBlob>();
  let counted = 0;

  const addImage = (raw: RawManifest, platform?: Platform): void => {
    for (const d of parseManifest(raw).blobs) addBlob(d);
    pushManifest(raw, platform);
  };
  const addBlob = (d: Descriptor): void => {
    if (isNonDistributable(d)) {
      notes.push(`layer ${d.digest} is non-distributable (foreign URLs); the manifest keeps referring to it and its bytes are not copied`);
      return;
    }
    if (!blobs.has(d.digest)) blobs.set(d.digest, { digest: d.digest, size: d.size, mediaType: d.mediaType });
  };
  const pushManifest = (raw: RawManifest, platform?: Platform): void => {
    if (!manifests.some((m) => m.digest === raw.digest)) {
      manifests.push({ digest: raw.digest, mediaType: raw.mediaType, bytes: raw.bytes.toString('base64'), platform: platform && platformString(platform) });
    }
  };
  const walkIndex = async (raw: RawManifest, depth: number, filter: boolean): Promise<readonly Descriptor[]> => {
    if (depth > MAX_INDEX_DEPTH) throw new ImportError('UNSUPPORTED_MANIFEST', `indexes nested deeper than ${MAX_INDEX_DEPTH} levels are not supported`);
    const children = parseManifest(raw).manifests;
    const selected = filter && filters.length ? children.filter((c) => filters.some((f) => platformMatches(f, c.platform))) : children;
    counted += selected.length;
    if (counted > opts.maxManifests) {
      throw new ImportError('TOO_MANY_MANIFESTS',
        `${src.registry}/${src.repository}:${reference} is an index of ${counted} manifests; the maximum number of manifests for an imported image is ${opts.maxManifests} (MAX_MANIFESTS)`);
    }
    for (const child of selected) {
      const childRaw = await opts.source.getManifest(src.repository, child.digest);
      if (parseManifest(childRaw).kind === 'index') {
        await walkIndex(childRaw, depth + 1, false);
        pushManifest(childRaw);
      } else {
        addImage(childRaw, child.platform);
      }
    }
    return selected;
  };

  let rootOut: RawManifest = root;
  if (parseManifest(root).kind === 'index') {
    const selected = await walkIndex(root, 1, true);
    if (filters.length) {
      if (selected.length === 0) {
        const available = parseManifest(root).manifests.map((c) => platformString(c.platform)).join(', ');
        throw new ImportError('NO_MATCHING_PLATFORM', `no manifest of ${req.source} matches ${filters.map(platformString).join(', ')}; it has: ${available}`);
      }
      rootOut = selected.length === 1 ? childManifest(manifests, selected[0]!.digest) : filteredIndex(root, selected);
      notes.push(selected.length === 1
        ? `only ${platformString(selected[0]!.platform)} was selected: the tags point at that platform's manifest ${rootOut.digest}`
        : `a filtered index of ${selected.length} platforms was written; its digest ${rootOut.digest} differs from the source's ${root.digest}`);
      if (rootOut !== root && !manifests.some((m) => m.digest === rootOut.digest)) pushManifest(rootOut);
    } else {
      pushManifest(root);
    }
  } else {
    addImage(root);
  }

  const target = { registry: normalizeRegistry(req.target), refs };
  const plan: ImportPlan = {
    version: 1,
    source: { registry: src.registry, repository: src.repository, reference },
    target,
    root: { digest: rootOut.digest, mediaType: rootOut.mediaType },
    manifests,
    blobs: [...blobs.values()],
    force: req.force ?? false,
    notes,
  };
  await checkTags(plan, opts.target);
  return plan;
}

function childManifest(manifests: readonly PlannedManifest[], digest: Digest): RawManifest {
  const m = manifests.find((x) => x.digest === digest);
  if (!m) throw new Error(`internal: manifest ${digest} missing from plan`);
  return manifestFrom(Buffer.from(m.bytes, 'base64'), m.mediaType);
}

/** An index of the selected children only, in the source index's own media type and fields. */
function filteredIndex(root: RawManifest, selected: readonly Descriptor[]): RawManifest {
  const json = JSON.parse(root.bytes.toString('utf8')) as Record<string, unknown>;
  json.manifests = selected;
  return manifestFrom(Buffer.from(JSON.stringify(json, null, 2)), root.mediaType);
}

/** Refuses up front to move a tag that exists and points elsewhere, unless `force`. */
export async function checkTags(plan: ImportPlan, target: RegistryClient): Promise<void> {
  if (plan.force) return;
  for (const ref of plan.target.refs) {
    if (!ref.tag) continue;
    const head = await target.headManifest(ref.repository, ref.tag);
    if (head && head.digest !== plan.root.digest) {
      throw new ImportError('TAG_EXISTS',
        `tag ${ref.repository}:${ref.tag} already exists on ${plan.target.registry} (${head.digest ?? 'unknown digest'}); use force to overwrite it`);
    }
  }
}
