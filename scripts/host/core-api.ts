/**
 * The in-process `@azure/functions-core` module.
 *
 * In Azure, the Node.js worker makes `require('@azure/functions-core')` return its core API; the
 * `@azure/functions` library calls `setProgrammingModel(model)` once and `registerFunction(metadata,
 * handler)` for every `app.http/storageQueue/timer(...)`, and registers hooks with `registerHook`.
 * Without that module the library falls into "test mode" and registers nothing.
 *
 * `installCoreApi()` provides the module the same way (a `Module._resolveFilename` hook plus an entry
 * in `Module._cache`), so the app's own modules register exactly as they do in Azure. This happens in
 * the worker process (worker.ts), never in the host process, as in Azure. Invocations then
 * go through the library's programming model (`getInvocationModel(coreCtx)` → `getArguments` →
 * hooks → `invokeFunction` → hooks → `getResponse`) like the worker's InvocationHandler does, so the
 * handler receives the library's real `HttpRequest` / `InvocationContext` objects and its return value
 * is converted by the library itself.
 */
import { randomUUID } from 'node:crypto';
import Module from 'node:module';
import type { HostLogger } from './log.js';
import { toHostLevel } from './log.js';

export const CORE_MODULE_ID = '@azure/functions-core';
export const HOST_VERSION = '4.0.0-oci-import-local';

// --- the parts of the core API types that the host uses (see azure-functions-nodejs-worker types-core) ---

export type RpcLogLevel = 'trace' | 'debug' | 'information' | 'warning' | 'error' | 'critical' | 'none';
export type RpcLogCategory = 'user' | 'system' | 'customMetric';

export interface RpcBindingInfo {
  type?: string | null;
  direction?: 'in' | 'out' | 'inout' | null;
  [key: string]: unknown;
}

export interface RpcDuration {
  seconds?: number | null;
  nanos?: number | null;
}

export interface RpcRetryOptions {
  maxRetryCount?: number | null;
  delayInterval?: RpcDuration | null;
  minimumInterval?: RpcDuration | null;
  maximumInterval?: RpcDuration | null;
  retryStrategy?: string | null;
  strategy?: string | null;
}

export interface CoreFunctionMetadata {
  name?: string | null;
  functionId?: string | null;
  bindings: Record<string, RpcBindingInfo>;
  retryOptions?: RpcRetryOptions | null;
}

export interface RpcTypedData {
  string?: string | null;
  json?: string | null;
  bytes?: Uint8Array | null;
  stream?: Uint8Array | null;
  http?: RpcHttpData | null;
  int?: number | null;
  double?: number | null;
  collectionString?: { string?: string[] | null } | null;
  collectionBytes?: { bytes?: Uint8Array[] | null } | null;
}

export interface RpcNullable<T> {
  value?: T | null;
}

export interface RpcHttpCookie {
  name?: string | null;
  value?: string | null;
  domain?: RpcNullable<string> | null;
  path?: RpcNullable<string> | null;
  expires?: RpcNullable<{ seconds?: number | null; nanos?: number | null }> | null;
  secure?: RpcNullable<boolean> | null;
  httpOnly?: RpcNullable<boolean> | null;
  sameSite?: 'none' | 'lax' | 'strict' | 'explicitNone' | null;
  maxAge?: RpcNullable<number> | null;
}

export interface RpcHttpData {
  method?: string | null;
  url?: string | null;
  headers?: Record<string, string> | null;
  body?: RpcTypedData | null;
  params?: Record<string, string> | null;
  query?: Record<string, string> | null;
  statusCode?: string | null;
  cookies?: RpcHttpCookie[] | null;
  enableContentNegotiation?: boolean | null;
}

export interface RpcParameterBinding {
  name?: string | null;
  data?: RpcTypedData | null;
}

export interface RpcInvocationRequest {
  invocationId: string;
  functionId: string;
  inputData: RpcParameterBinding[];
  triggerMetadata: Record<string, RpcTypedData>;
  traceContext?: { traceParent?: string; traceState?: string; attributes?: Record<string, string> };
  retryContext?: {
    retryCount: number;
    maxRetryCount: number;
    exception?: { message?: string; source?: string; stackTrace?: string };
  };
}

export interface RpcInvocationResponse {
  invocationId?: string | null;
  outputData?: RpcParameterBinding[] | null;
  returnValue?: RpcTypedData | null;
}

export type FunctionCallback = (...args: unknown[]) => unknown;

export interface CoreInvocationContext {
  invocationId: string;
  request: RpcInvocationRequest;
  metadata: CoreFunctionMetadata & { name: string };
  state?: 'preInvocationHooks' | 'postInvocationHooks' | 'invocation';
  log(level: RpcLogLevel, category: RpcLogCategory, message: string): void;
}

export interface InvocationModel {
  getArguments(): Promise<{ context: unknown; inputs: unknown[] }>;
  invokeFunction(context: unknown, inputs: unknown[], callback: FunctionCallback): Promise<unknown>;
  getResponse(context: unknown, result: unknown): Promise<RpcInvocationResponse>;
}

export interface ProgrammingModel {
  name: string;
  version: string;
  getInvocationModel(coreCtx: CoreInvocationContext): InvocationModel | Promise<InvocationModel>;
}

type HookCallback = (context: Record<string, unknown>) => unknown;

/** The `Disposable` class of the core API (VS Code style). */
export class Disposable {
  static from(...items: { dispose: () => unknown }[]): Disposable {
    return new Disposable(() => {
      for (const item of items) item.dispose();
    });
  }
  #onDispose: (() => unknown) | undefined;
  constructor(onDispose: () => unknown) {
    this.#onDispose = onDispose;
  }
  dispose(): unknown {
    const fn = this.#onDispose;
    this.#onDispose = undefined;
    return fn?.();
  }
}

/** What the host knows of a function: the metadata the worker indexed (no code; it crosses the IPC channel). */
export interface FunctionInfo {
  readonly name: string;
  readonly metadata: CoreFunctionMetadata & { name: string };
  /** Name of the trigger binding (the key in `metadata.bindings`). */
  readonly triggerName: string;
  readonly trigger: RpcBindingInfo;
}

/** A function registered in the worker process: its metadata and its handler. */
export interface RegisteredFunction extends FunctionInfo {
  readonly functionId: string;
  readonly callback: FunctionCallback;
}

/** State shared by the core API, the loader and the trigger listeners. */
export class FunctionsRuntime {
  readonly functions = new Map<string, RegisteredFunction>();
  readonly hooks = new Map<string, HookCallback[]>();
  readonly appHookData: Record<string, unknown> = {};
  programmingModel: ProgrammingModel | undefined;
  startupFinished = false;
  /** Set when the app called `app.setup({ enableHttpStream: true })` (not supported here). */
  httpStreamRequested = false;

  constructor(readonly logger: HostLogger) {}

  /** The object handed out as `require('@azure/functions-core')`. */
  readonly coreApi = {
    version: HOST_VERSION,
    hostVersion: HOST_VERSION,
    Disposable,
    setProgrammingModel: (model: ProgrammingModel): void => {
      this.programmingModel = model;
      this.logger.debug('host', `programming model "${model.name}" version "${model.version}"`);
    },
    getProgrammingModel: (): ProgrammingModel | undefined => this.programmingModel,
    registerFunction: (metadata: CoreFunctionMetadata, callback: FunctionCallback): Disposable =>
      this.registerFunction(metadata, callback),
    registerHook: (hookName: string, callback: HookCallback): Disposable => this.registerHook(hookName, callback),
    log: (level: RpcLogLevel, category: RpcLogCategory, message: string): void => {
      if (message === 'HTTP streaming enabled.') this.httpStreamRequested = true;
      this.logger.log(toHostLevel(level), category === 'user' ? 'app' : 'functions', message);
    },
  };

  registerFunction(metadata: CoreFunctionMetadata, callback: FunctionCallback): Disposable {
    if (this.startupFinished) throw new Error('A function can only be registered during app startup.');
    const name = metadata.name ?? metadata.functionId;
    if (!name) throw new Error('registerFunction: metadata has no name');
    if (typeof callback !== 'function') throw new Error(`registerFunction: handler of "${name}" is not a function`);
    if (!metadata.bindings || typeof metadata.bindings !== 'object')
      throw new Error(`registerFunction: "${name}" has no bindings`);
    const lower = name.toLowerCase();
    for (const existing of this.functions.values()) {
      if (existing.name.toLowerCase() === lower)
        throw new Error(`A function named "${name}" is already registered (function names are case-insensitive).`);
    }
    const triggers = Object.entries(metadata.bindings).filter(
      ([, b]) => typeof b.type === 'string' && /trigger$/i.test(b.type),
    );
    if (triggers.length !== 1)
      throw new Error(`Function "${name}" must have exactly one trigger binding (found ${triggers.length}).`);
    const [triggerName, trigger] = triggers[0]!;
    const functionId = randomUUID();
    this.functions.set(functionId, {
      name,
      functionId,
      callback,
      triggerName,
      trigger,
      metadata: { ...metadata, name, functionId },
    });
    return new Disposable(() => {
      if (this.startupFinished) throw new Error('A function can only be disposed during app startup.');
      this.functions.delete(functionId);
    });
  }

  registerHook(hookName: string, callback: HookCallback): Disposable {
    if (typeof callback !== 'function') throw new Error(`registerHook: callback for "${hookName}" is not a function`);
    const list = this.hooks.get(hookName) ?? [];
    list.push(callback);
    this.hooks.set(hookName, list);
    return new Disposable(() => {
      const current = this.hooks.get(hookName);
      if (current)
        this.hooks.set(
          hookName,
          current.filter((c) => c !== callback),
        );
    });
  }

  async executeHooks(hookName: string, context: Record<string, unknown>): Promise<void> {
    for (const callback of [...(this.hooks.get(hookName) ?? [])]) {
      await callback(context);
    }
  }

  /** Runs `log` hooks synchronously (they may change level and message) — only for user logs. */
  runLogHooks(entry: {
    level: RpcLogLevel;
    message: string;
    category: RpcLogCategory;
    invocationContext?: unknown;
  }): void {
    const hooks = this.hooks.get('log');
    if (!hooks || hooks.length === 0) return;
    const ctx: Record<string, unknown> = { ...entry, hookData: {}, appHookData: this.appHookData };
    for (const hook of hooks) {
      try {
        hook(ctx);
      } catch (err) {
        this.logger.warn('host', `log hook failed: ${(err as Error).message}`);
      }
    }
    entry.level = ctx.level as RpcLogLevel;
    entry.message = String(ctx.message);
  }
}

interface ModuleInternals {
  _resolveFilename: (request: string, parent: unknown, isMain: boolean, options?: unknown) => string;
  _cache: Record<string, unknown>;
}

let installed: FunctionsRuntime | undefined;

/**
 * Makes `require('@azure/functions-core')` return `runtime.coreApi` in this process. Must run before
 * any function module (and thus `@azure/functions`) asks for it: the library caches the first answer.
 */
export function installCoreApi(runtime: FunctionsRuntime): void {
  if (installed) {
    if (installed !== runtime) throw new Error('installCoreApi: a different runtime is already installed');
    return;
  }
  const M = Module as unknown as ModuleInternals;
  const original = M._resolveFilename;
  M._resolveFilename = function resolveFilename(
    this: unknown,
    request: string,
    parent: unknown,
    isMain: boolean,
    options?: unknown,
  ): string {
    if (request === CORE_MODULE_ID) return CORE_MODULE_ID;
    return original.call(this, request, parent, isMain, options);
  };
  const mod = new Module(CORE_MODULE_ID);
  mod.filename = CORE_MODULE_ID;
  mod.exports = runtime.coreApi;
  mod.loaded = true;
  M._cache[CORE_MODULE_ID] = mod;
  installed = runtime;
}
