/**
 * Evaluates the ARM template expressions of the compiled template (`[if(equals(parameters('x'), 'y'), …)]`) for
 * given parameter values, so tests assert what a deployment would get, not how the expression is spelled. Only
 * the functions these templates use in the values under test; any other one throws, as does `reference()`
 * unless the test stubs it.
 */
import type { Json, JsonObject } from './compiled.js';

/** A parameter value that could not be evaluated (it needs a function these tests do not stub); using it throws. */
export class Unevaluated {
  constructor(readonly reason: string) {}
}

export interface EvalContext {
  readonly parameters: Record<string, Json | Unevaluated>;
  readonly variables?: JsonObject;
  /** `reference('<symbol or id>')`: stubbed by the test. */
  readonly reference?: (name: string) => Json;
  /** The variables of the lambdas being applied (`lambdaVariables('x')`). */
  readonly lambdaVariables?: Record<string, Json>;
}

/** A `lambda('x', body)` value: applied by map() and filter(), never a template value itself. */
interface Lambda {
  readonly lambda: string;
  readonly body: Node;
}

const isLambda = (v: unknown): v is Lambda => typeof v === 'object' && v !== null && 'lambda' in v && 'body' in v;

function apply(fn: Json, item: Json, ctx: EvalContext): Json {
  if (!isLambda(fn)) throw new Error('expected a lambda');
  return run(fn.body, { ...ctx, lambdaVariables: { ...ctx.lambdaVariables, [fn.lambda]: item } });
}

function list(v: Json): Json[] {
  if (!Array.isArray(v)) throw new Error(`expected an array, got ${JSON.stringify(v)}`);
  return v;
}

type Node =
  | { kind: 'literal'; value: Json }
  | { kind: 'call'; name: string; args: Node[] }
  | { kind: 'property'; target: Node; name: string }
  | { kind: 'index'; target: Node; index: Node };

function parse(text: string): Node {
  let i = 0;
  const ws = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const expr = (): Node => {
    ws();
    let node: Node;
    if (text[i] === "'") {
      let s = '';
      i++;
      for (;;) {
        if (i >= text.length) throw new Error(`unterminated string in ${text}`);
        if (text[i] === "'") {
          if (text[i + 1] === "'") {
            s += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        s += text[i++];
      }
      node = { kind: 'literal', value: s };
    } else if (/[-0-9]/.test(text[i]!)) {
      const m = /^-?\d+/.exec(text.slice(i))!;
      i += m[0].length;
      node = { kind: 'literal', value: Number(m[0]) };
    } else {
      const m = /^[A-Za-z_][\w.]*/.exec(text.slice(i));
      if (!m) throw new Error(`unexpected "${text.slice(i, i + 10)}" in ${text}`);
      i += m[0].length;
      ws();
      if (text[i] !== '(') throw new Error(`expected ( after ${m[0]} in ${text}`);
      i++;
      const args: Node[] = [];
      ws();
      if (text[i] === ')') i++;
      else {
        for (;;) {
          args.push(expr());
          ws();
          if (text[i] === ',') {
            i++;
            continue;
          }
          if (text[i] === ')') {
            i++;
            break;
          }
          throw new Error(`expected , or ) in ${text} at ${i}`);
        }
      }
      node = { kind: 'call', name: m[0].toLowerCase(), args };
    }
    for (;;) {
      if (text[i] === '.') {
        const m = /^\.([A-Za-z_$][\w$]*)/.exec(text.slice(i))!;
        i += m[0].length;
        node = { kind: 'property', target: node, name: m[1]! };
      } else if (text[i] === '[') {
        i++;
        const index = expr();
        ws();
        if (text[i] !== ']') throw new Error(`expected ] in ${text}`);
        i++;
        node = { kind: 'index', target: node, index };
      } else {
        return node;
      }
    }
  };
  const node = expr();
  ws();
  if (i !== text.length) throw new Error(`trailing "${text.slice(i)}" in ${text}`);
  return node;
}

const isExpression = (v: Json): v is string =>
  typeof v === 'string' && v.startsWith('[') && v.endsWith(']') && !v.startsWith('[[');

function truthy(v: Json): boolean {
  if (typeof v !== 'boolean') throw new Error(`expected a bool, got ${JSON.stringify(v)}`);
  return v;
}

function isEmpty(v: Json): boolean {
  if (v === null) return true;
  if (typeof v === 'string' || Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.keys(v).length === 0;
  throw new Error(`empty() of ${JSON.stringify(v)}`);
}

function run(node: Node, ctx: EvalContext): Json {
  switch (node.kind) {
    case 'literal':
      return node.value;
    case 'property': {
      const target = run(node.target, ctx) as JsonObject | null;
      if (target === null || typeof target !== 'object') throw new Error(`.${node.name} of ${JSON.stringify(target)}`);
      return target[node.name] ?? null;
    }
    case 'index': {
      const target = run(node.target, ctx) as Record<string, Json>;
      return target[String(run(node.index, ctx))] ?? null;
    }
    case 'call': {
      const args = node.args;
      const arg = (n: number) => run(args[n]!, ctx);
      switch (node.name) {
        case 'if':
          return truthy(arg(0)) ? arg(1) : arg(2);
        case 'and':
          return args.every((_, n) => truthy(arg(n)));
        case 'or':
          return args.some((_, n) => truthy(arg(n)));
        case 'not':
          return !truthy(arg(0));
        case 'empty':
          return isEmpty(arg(0));
        case 'equals':
          return JSON.stringify(arg(0)) === JSON.stringify(arg(1));
        case 'true':
          return true;
        case 'false':
          return false;
        case 'null':
          return null;
        case 'tolower':
          return String(arg(0)).toLowerCase();
        case 'concat':
          return args.map((_, n) => arg(n)).join('');
        case 'format': {
          const values = args.slice(1).map((_, n) => arg(n + 1));
          return String(arg(0)).replace(/\{(\d+)\}/g, (_m, k: string) => String(values[Number(k)]));
        }
        case 'createobject': {
          const out: JsonObject = {};
          for (let n = 0; n < args.length; n += 2) out[String(arg(n))] = arg(n + 1);
          return out;
        }
        case 'createarray':
          return args.map((_, n) => arg(n));
        case 'parameters': {
          const name = String(arg(0));
          if (!(name in ctx.parameters)) throw new Error(`parameter ${name} has no value in this test`);
          const value = ctx.parameters[name]!;
          if (value instanceof Unevaluated) throw new Error(`parameter ${name} was not evaluated: ${value.reason}`);
          return evaluate(value, ctx);
        }
        case 'variables': {
          const name = String(arg(0));
          if (!ctx.variables || !(name in ctx.variables)) throw new Error(`no variable ${name}`);
          return evaluate(ctx.variables[name]!, ctx);
        }
        case 'reference':
          if (!ctx.reference) throw new Error(`reference(${String(arg(0))}) is not stubbed`);
          return ctx.reference(String(arg(0)));
        case 'lambda':
          if (args.length !== 2) throw new Error('arm-eval: lambdas of one variable only');
          return { lambda: String(arg(0)), body: args[1]! } as unknown as Json;
        case 'lambdavariables': {
          const name = String(arg(0));
          if (!ctx.lambdaVariables || !(name in ctx.lambdaVariables)) throw new Error(`no lambda variable ${name}`);
          return ctx.lambdaVariables[name]!;
        }
        case 'map':
          return list(arg(0)).map((item) => apply(arg(1), item, ctx));
        case 'filter':
          return list(arg(0)).filter((item) => truthy(apply(arg(1), item, ctx)));
        case 'join':
          return list(arg(0))
            .map(String)
            .join(String(arg(1)));
        case 'tryget': {
          const target = arg(0);
          return target !== null && typeof target === 'object' && !Array.isArray(target)
            ? (target[String(arg(1))] ?? null)
            : null;
        }
        case 'coalesce':
          return args.map((_, n) => arg(n)).find((v) => v !== null) ?? null;
        default:
          throw new Error(`arm-eval: function ${node.name}() is not supported`);
      }
    }
  }
}

/** The value of a template property: an expression is evaluated, objects and arrays member by member. */
export function evaluate(value: Json, ctx: EvalContext): Json {
  if (isExpression(value)) return run(parse(value.slice(1, -1)), ctx);
  if (Array.isArray(value)) return value.map((v) => evaluate(v, ctx));
  if (value && typeof value === 'object') {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) out[k] = evaluate(v, ctx);
    return out;
  }
  return value;
}

/** A module's (or main's) parameter values: the given ones over the template's defaults. */
export function parameterValues(
  template: { parameters?: Record<string, JsonObject> },
  given: Record<string, Json | Unevaluated>,
): Record<string, Json | Unevaluated> {
  const out: Record<string, Json | Unevaluated> = {};
  for (const [name, spec] of Object.entries(template.parameters ?? {})) {
    if (name in given) out[name] = given[name]!;
    else if ('defaultValue' in spec) out[name] = spec.defaultValue!;
  }
  return out;
}
