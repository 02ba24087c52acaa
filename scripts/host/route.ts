/**
 * HTTP route templates as the Functions host (ASP.NET Core routing) reads them:
 *   `imports`, `imports/{id}`, `imports/{id?}`, `files/{*path}`, `items/{id:int}`, `items/{id=default}`,
 *   complex segments such as `files/{name}.{ext}`.
 * Literal segments match case-insensitively; parameter values are URL-decoded. When several templates
 * match, the more specific one wins (literal > constrained parameter > parameter > optional > catch-all).
 */

export class RouteError extends Error {
  override readonly name = 'RouteError';
}

interface Param {
  readonly name: string;
  readonly optional: boolean;
  readonly catchAll: boolean;
  readonly defaultValue?: string;
  readonly constraints: readonly ((value: string) => boolean)[];
}

type Segment =
  | { readonly kind: 'literal'; readonly text: string }
  | { readonly kind: 'param'; readonly param: Param }
  | { readonly kind: 'complex'; readonly regex: RegExp; readonly params: readonly Param[] };

export interface CompiledRoute {
  readonly template: string;
  readonly segments: readonly Segment[];
  /** Lower sorts first (more specific). */
  readonly rank: readonly number[];
}

const GUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

function constraint(spec: string, template: string): (value: string) => boolean {
  const m = /^([a-z]+)(?:\((.*)\))?$/i.exec(spec);
  if (!m) throw new RouteError(`route '${template}': unsupported constraint '${spec}'`);
  const name = m[1]!.toLowerCase();
  const args = m[2] === undefined ? [] : m[2].split(',').map((a) => a.trim());
  const n = (i: number): number => {
    const v = Number(args[i]);
    if (!Number.isFinite(v)) throw new RouteError(`route '${template}': constraint '${spec}' needs a number`);
    return v;
  };
  switch (name) {
    case 'int':
      return (v) => /^-?\d+$/.test(v) && Math.abs(Number(v)) <= 2 ** 31;
    case 'long':
      return (v) => /^-?\d+$/.test(v);
    case 'bool':
      return (v) => /^(true|false)$/i.test(v);
    case 'guid':
      return (v) => GUID.test(v);
    case 'alpha':
      return (v) => /^[a-z]+$/i.test(v);
    case 'datetime':
      return (v) => !Number.isNaN(Date.parse(v));
    case 'decimal':
    case 'double':
    case 'float':
      return (v) => v.trim() !== '' && Number.isFinite(Number(v));
    case 'min': {
      const a = n(0);
      return (v) => /^-?\d+$/.test(v) && Number(v) >= a;
    }
    case 'max': {
      const a = n(0);
      return (v) => /^-?\d+$/.test(v) && Number(v) <= a;
    }
    case 'range': {
      const a = n(0);
      const b = n(1);
      return (v) => /^-?\d+$/.test(v) && Number(v) >= a && Number(v) <= b;
    }
    case 'minlength': {
      const a = n(0);
      return (v) => v.length >= a;
    }
    case 'maxlength': {
      const a = n(0);
      return (v) => v.length <= a;
    }
    case 'length': {
      const a = n(0);
      const b = args.length > 1 ? n(1) : a;
      return (v) => v.length >= a && v.length <= b;
    }
    case 'regex': {
      const re = new RegExp(m[2] ?? '', 'i');
      return (v) => re.test(v);
    }
    default:
      throw new RouteError(`route '${template}': unsupported constraint '${spec}'`);
  }
}

function parseParam(body: string, template: string): Param {
  // {name}, {name?}, {*name}, {**name}, {name=default}, {name:int}, {name:int?}, {name:regex(^a$)}
  let text = body;
  let catchAll = false;
  if (text.startsWith('**')) {
    catchAll = true;
    text = text.slice(2);
  } else if (text.startsWith('*')) {
    catchAll = true;
    text = text.slice(1);
  }
  let optional = false;
  let defaultValue: string | undefined;
  const eq = text.indexOf('=');
  if (eq >= 0) {
    defaultValue = text.slice(eq + 1);
    text = text.slice(0, eq);
  }
  if (text.endsWith('?')) {
    optional = true;
    text = text.slice(0, -1);
  }
  const [name, ...constraintSpecs] = splitConstraints(text);
  if (!name || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
    throw new RouteError(`route '${template}': invalid parameter '{${body}}'`);
  return { name, optional, catchAll, defaultValue, constraints: constraintSpecs.map((c) => constraint(c, template)) };
}

/** Splits `id:int:regex(a:b)` on colons outside parentheses. */
function splitConstraints(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ':' && depth === 0) {
      out.push(current);
      current = '';
      continue;
    }
    current += ch;
  }
  out.push(current);
  return out;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function compileRoute(template: string): CompiledRoute {
  const trimmed = template.replace(/^[~/]+|\/+$/g, '');
  const rawSegments = trimmed === '' ? [] : trimmed.split('/');
  const segments: Segment[] = [];
  const rank: number[] = [];
  const names = new Set<string>();
  rawSegments.forEach((raw, index) => {
    if (raw === '') throw new RouteError(`route '${template}': empty segment`);
    const whole = /^\{([^{}]+)\}$/.exec(raw);
    if (whole) {
      const param = parseParam(whole[1]!, template);
      if (param.catchAll && index !== rawSegments.length - 1)
        throw new RouteError(`route '${template}': a catch-all parameter must be last`);
      if (names.has(param.name.toLowerCase()))
        throw new RouteError(`route '${template}': parameter '${param.name}' appears twice`);
      names.add(param.name.toLowerCase());
      segments.push({ kind: 'param', param });
      rank.push(
        param.catchAll
          ? 6
          : param.optional || param.defaultValue !== undefined
            ? 5
            : param.constraints.length > 0
              ? 3
              : 4,
      );
      return;
    }
    if (!raw.includes('{') && !raw.includes('}')) {
      segments.push({ kind: 'literal', text: raw.toLowerCase() });
      rank.push(1);
      return;
    }
    // Complex segment: literal text with one or more parameters, e.g. {name}.{ext}
    const params: Param[] = [];
    let pattern = '^';
    let rest = raw;
    while (rest.length > 0) {
      const open = rest.indexOf('{');
      if (open < 0) {
        pattern += escapeRegex(rest);
        break;
      }
      const close = rest.indexOf('}', open);
      if (close < 0) throw new RouteError(`route '${template}': unbalanced '{' in '${raw}'`);
      pattern += escapeRegex(rest.slice(0, open));
      const param = parseParam(rest.slice(open + 1, close), template);
      if (param.catchAll || param.optional)
        throw new RouteError(`route '${template}': '${raw}' may not contain optional or catch-all parameters`);
      if (names.has(param.name.toLowerCase()))
        throw new RouteError(`route '${template}': parameter '${param.name}' appears twice`);
      names.add(param.name.toLowerCase());
      params.push(param);
      pattern += '(.+)'; // greedy: separators match from the right, as ASP.NET does
      rest = rest.slice(close + 1);
    }
    segments.push({ kind: 'complex', regex: new RegExp(`${pattern}$`, 'i'), params });
    rank.push(2);
  });
  return { template, segments, rank };
}

/** Compares two routes by specificity (negative: `a` first). */
export function compareRoutes(a: CompiledRoute, b: CompiledRoute): number {
  const len = Math.max(a.rank.length, b.rank.length);
  for (let i = 0; i < len; i++) {
    // A missing segment is less specific than any present one, but more than a catch-all.
    const ra = a.rank[i] ?? 5.5;
    const rb = b.rank[i] ?? 5.5;
    if (ra !== rb) return ra - rb;
  }
  return 0;
}

function safeDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

function checks(param: Param, value: string): boolean {
  return param.constraints.every((c) => c(value));
}

/**
 * Matches a request path (relative to the route prefix, raw — not decoded, no query) against a route.
 * Returns the parameter values, or null.
 */
export function matchRoute(route: CompiledRoute, rawPath: string): Record<string, string> | null {
  const parts = rawPath.split('/').filter((p) => p !== '');
  const params: Record<string, string> = {};
  let i = 0;
  for (const seg of route.segments) {
    if (seg.kind === 'param' && seg.param.catchAll) {
      const rest = parts.slice(i).map(safeDecode);
      if (rest.some((r) => r === undefined)) return null;
      const value = rest.join('/');
      if (value !== '') {
        if (!checks(seg.param, value)) return null;
        params[seg.param.name] = value;
      } else if (seg.param.defaultValue !== undefined) {
        params[seg.param.name] = seg.param.defaultValue;
      }
      i = parts.length;
      continue;
    }
    const part = parts[i];
    if (part === undefined) {
      if (seg.kind === 'param' && (seg.param.optional || seg.param.defaultValue !== undefined)) {
        if (seg.param.defaultValue !== undefined) params[seg.param.name] = seg.param.defaultValue;
        continue;
      }
      return null;
    }
    const decoded = safeDecode(part);
    if (decoded === undefined) return null;
    if (seg.kind === 'literal') {
      if (decoded.toLowerCase() !== seg.text) return null;
    } else if (seg.kind === 'param') {
      if (!checks(seg.param, decoded)) return null;
      params[seg.param.name] = decoded;
    } else {
      const m = seg.regex.exec(decoded);
      if (!m) return null;
      for (let k = 0; k < seg.params.length; k++) {
        const value = m[k + 1]!;
        if (!checks(seg.params[k]!, value)) return null;
        params[seg.params[k]!.name] = value;
      }
    }
    i++;
  }
  return i === parts.length ? params : null;
}
