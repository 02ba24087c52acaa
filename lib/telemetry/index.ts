/**
 * Traces and metrics, through OpenTelemetry's standard settings — and nothing at all without them. This module is
 * the app's only door to telemetry and imports no OpenTelemetry package: with neither OTEL_EXPORTER_OTLP_ENDPOINT
 * nor APPLICATIONINSIGHTS_CONNECTION_STRING set, every call below is a no-op and start-up loads nothing more.
 * With one of them, `startTelemetry` loads ./sdk.js (dynamic import) and the calls go to the SDK:
 *
 * - one trace per import: the POST's span starts it; every queue step message carries the W3C `traceparent` of
 *   the span that sent it (signed with the rest of the message, lib/store/queue.ts), and each step is a span of
 *   that trace with the import id, source, target and byte counts as attributes;
 * - metrics: imports by outcome and error code, bytes copied and skipped (mounted, already there), step
 *   durations, queue wait (enqueued → step started), sync pass results.
 */

import type { SpanOptions, Telemetry } from './types.js';

export type { Attributes, CounterName, HistogramName, SpanOptions, Telemetry } from './types.js';

const NOOP: Telemetry = {
  enabled: false,
  span: (_name, _options, fn) => fn(),
  annotate: () => undefined,
  traceparent: () => undefined,
  traceId: () => undefined,
  count: () => undefined,
  record: () => undefined,
  flush: async () => undefined,
};

let active: Telemetry = NOOP;
let loading: Promise<void> | undefined;

type Env = Record<string, string | undefined>;

/** Whether the environment asks for telemetry: an OTLP endpoint or an Application Insights connection string. */
export function telemetryConfigured(env: Env): boolean {
  return Boolean(
    env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() ||
    env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() ||
    env.APPLICATIONINSIGHTS_CONNECTION_STRING?.trim(),
  );
}

/**
 * Loads the SDK when the environment asks for it (once per process); resolves at once otherwise. A failure to
 * start telemetry is reported on stderr and leaves the app running without it.
 */
export function startTelemetry(env: Env = process.env): Promise<void> {
  if (!telemetryConfigured(env)) return Promise.resolve();
  loading ??= import('./sdk.js')
    .then(async (sdk) => {
      active = await sdk.startSdk(env);
    })
    .catch((err: unknown) => {
      process.stderr.write(`oci-import: telemetry not started: ${(err as Error).message}\n`);
    });
  return loading;
}

/** The process's telemetry (no-op until, or unless, the SDK is loaded). */
export function telemetry(): Telemetry {
  return active;
}

/** A span once the SDK is loaded (a span begun while it loads waits for it: the first request's trace is kept). */
export async function withSpan<T>(name: string, options: SpanOptions, fn: () => Promise<T>): Promise<T> {
  if (loading) await loading;
  return active.span(name, options, fn);
}

/** What a queue message carries of the trace: its traceparent and when it becomes visible (for the queue wait). */
export function traceFields(delaySeconds = 0): { tp?: string; at?: number } {
  const tp = active.traceparent();
  return tp ? { tp, at: Date.now() + Math.max(0, Math.round(delaySeconds)) * 1000 } : {};
}

/** A log line with the trace id appended, when there is a trace. */
export function withTraceId(line: string): string {
  const id = active.traceId();
  return id ? `${line} [trace ${id}]` : line;
}
