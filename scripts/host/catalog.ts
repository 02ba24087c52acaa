/**
 * What the host does with each registered function: classify its trigger, resolve `%SETTING%`
 * expressions in every binding property (as the Functions host does), honour
 * `AzureWebJobs.<name>.Disabled`, and note what is not supported locally.
 */
import type { FunctionInfo, RpcBindingInfo } from './core-api.js';
import { resolveSettingRefs, type Env } from './settings.js';

export type TriggerKind = 'http' | 'queue' | 'timer' | 'unsupported';

export interface HostedFunction {
  readonly fn: FunctionInfo;
  readonly kind: TriggerKind;
  /** The trigger binding with %SETTING% expressions resolved. */
  readonly trigger: RpcBindingInfo;
  /** Output bindings (resolved), keyed by binding name (`$return` for the return value). */
  readonly outputs: ReadonlyMap<string, RpcBindingInfo>;
  readonly disabled: boolean;
}

export interface Catalog {
  readonly functions: readonly HostedFunction[];
  readonly warnings: readonly string[];
  /** Settings that were not set and took a documented default (only with --setting-defaults, see main.ts). */
  readonly defaulted: ReadonlySet<string>;
}

function kindOf(type: string | null | undefined): TriggerKind {
  switch ((type ?? '').toLowerCase()) {
    case 'httptrigger':
      return 'http';
    case 'queuetrigger':
      return 'queue';
    case 'timertrigger':
      return 'timer';
    default:
      return 'unsupported';
  }
}

function resolveBinding(
  binding: RpcBindingInfo,
  env: Env,
  where: string,
  fallback: ((name: string) => string | undefined) | undefined,
  defaulted: Set<string>,
): RpcBindingInfo {
  const out: RpcBindingInfo = {};
  for (const [key, value] of Object.entries(binding)) {
    if (typeof value === 'string' && value.includes('%')) {
      const r = resolveSettingRefs(value, env, `${where} ${key}`, fallback);
      r.defaulted.forEach((d) => defaulted.add(d));
      out[key] = r.value;
    } else {
      out[key] = value;
    }
  }
  return out;
}

function isDisabled(name: string, env: Env): boolean {
  const v = env[`AzureWebJobs.${name}.Disabled`] ?? env[`AzureWebJobs_${name}_Disabled`];
  return v !== undefined && /^(true|1)$/i.test(v.trim());
}

export function buildCatalog(
  registered: readonly FunctionInfo[],
  env: Env,
  fallback?: (name: string) => string | undefined,
): Catalog {
  const functions: HostedFunction[] = [];
  const warnings: string[] = [];
  const defaulted = new Set<string>();
  for (const fn of registered) {
    const disabled = isDisabled(fn.name, env);
    const kind = kindOf(fn.trigger.type);
    const where = `function '${fn.name}'`;
    const trigger = disabled ? fn.trigger : resolveBinding(fn.trigger, env, `${where} trigger`, fallback, defaulted);
    const outputs = new Map<string, RpcBindingInfo>();
    for (const [name, binding] of Object.entries(fn.metadata.bindings)) {
      if (name === fn.triggerName) continue;
      if (binding.direction === 'in') {
        warnings.push(
          `${where}: input binding '${name}' (${String(binding.type)}) is not supported by the local host; it will be undefined`,
        );
        continue;
      }
      const resolved = disabled
        ? binding
        : resolveBinding(binding, env, `${where} output '${name}'`, fallback, defaulted);
      outputs.set(name, resolved);
      const type = String(binding.type ?? '').toLowerCase();
      if (type !== 'queue' && type !== 'http') {
        warnings.push(
          `${where}: output binding '${name}' (${String(binding.type)}) is not supported by the local host; its value is dropped`,
        );
      }
    }
    if (kind === 'unsupported') {
      warnings.push(
        `${where}: trigger type '${String(fn.trigger.type)}' is not supported by the local host; the function will not run`,
      );
    }
    functions.push({ fn, kind, trigger, outputs, disabled });
  }
  return { functions, warnings, defaulted };
}
