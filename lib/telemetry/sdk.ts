/**
 * The OpenTelemetry SDK behind lib/telemetry/index.ts, loaded only when telemetry is configured:
 *
 * - OTEL_EXPORTER_OTLP_ENDPOINT (or …_TRACES_ENDPOINT / …_METRICS_ENDPOINT): OTLP over HTTP with JSON bodies
 *   (`http/json`, the only OTEL_EXPORTER_OTLP_PROTOCOL supported here; another is reported and JSON used); batch
 *   span export as OTEL_BSP_* say (the SDK reads them), metrics every OTEL_METRIC_EXPORT_INTERVAL ms (60 000);
 *   service name from OTEL_SERVICE_NAME (default `oci-import`), more resource attributes from OTEL_RESOURCE_ATTRIBUTES.
 * - APPLICATIONINSIGHTS_CONNECTION_STRING: the Azure Monitor OpenTelemetry distro (@azure/monitor-opentelemetry),
 *   with its HTTP and Azure SDK instrumentation (registry and storage requests as child spans, as far as that
 *   instrumentation sees undici's requests: not confirmed here); with an OTLP endpoint too, spans and metrics also
 *   go there. The template sets it (infra/modules/function-app.bicep), so in Azure the distro is loaded.
 */
import {
  context,
  metrics,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes as OtelAttributes,
  type Context,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader, type MetricReader } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, NodeTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-node';
import type { Attributes, CounterName, HistogramName, Telemetry } from './types.js';

type Env = Record<string, string | undefined>;

const W3C = new W3CTraceContextPropagator();
const KINDS = { server: SpanKind.SERVER, consumer: SpanKind.CONSUMER, internal: SpanKind.INTERNAL } as const;

function clean(a: Attributes | undefined): OtelAttributes {
  const out: OtelAttributes = {};
  for (const [k, v] of Object.entries(a ?? {})) if (v !== undefined) out[k] = v;
  return out;
}

function otlp(env: Env): { spans: SpanProcessor; reader: MetricReader } | undefined {
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() && !env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim()) return undefined;
  const protocol = env.OTEL_EXPORTER_OTLP_PROTOCOL?.trim();
  if (protocol && protocol !== 'http/json')
    process.stderr.write(
      `oci-import: OTEL_EXPORTER_OTLP_PROTOCOL=${protocol} is not supported here; sending http/json\n`,
    );
  const interval = Number(env.OTEL_METRIC_EXPORT_INTERVAL) > 0 ? Number(env.OTEL_METRIC_EXPORT_INTERVAL) : 60_000;
  return {
    spans: new BatchSpanProcessor(new OTLPTraceExporter()),
    reader: new PeriodicExportingMetricReader({
      exporter: new OTLPMetricExporter(),
      exportIntervalMillis: interval,
      exportTimeoutMillis: Math.min(30_000, interval),
    }),
  };
}

/**
 * The template's Application Insights takes Entra ID tokens only (local authentication off): as the Functions host
 * does, the app signs in with the managed identity that APPLICATIONINSIGHTS_AUTHENTICATION_STRING names
 * (`ClientId=…;Authorization=AAD`). Without that setting: the connection string's key, as the distro does.
 */
async function entraCredential(env: Env): Promise<import('@azure/identity').TokenCredential | undefined> {
  const auth = env.APPLICATIONINSIGHTS_AUTHENTICATION_STRING ?? '';
  if (!/Authorization=AAD/i.test(auth)) return undefined;
  const { ManagedIdentityCredential } = await import('@azure/identity');
  const clientId = /ClientId=([^;]+)/i.exec(auth)?.[1]?.trim();
  return clientId ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential();
}

/** Starts the providers (or the distro) and returns the app's view of them. */
export async function startSdk(env: Env): Promise<Telemetry> {
  const extra = otlp(env);
  const resource = resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME?.trim() || 'oci-import' }).merge(
    detectResources({ detectors: [envDetector] }),
  );
  let flushers: (() => Promise<void>)[] = [];
  if (env.APPLICATIONINSIGHTS_CONNECTION_STRING?.trim()) {
    const { useAzureMonitor } = await import('@azure/monitor-opentelemetry');
    useAzureMonitor({
      azureMonitorExporterOptions: {
        connectionString: env.APPLICATIONINSIGHTS_CONNECTION_STRING,
        credential: await entraCredential(env),
      },
      resource,
      ...(extra ? { spanProcessors: [extra.spans], metricReaders: [extra.reader] } : {}),
    });
    flushers = [
      async () => {
        await (trace.getTracerProvider() as { forceFlush?: () => Promise<void> }).forceFlush?.();
      },
    ];
  } else if (extra) {
    const tracing = new NodeTracerProvider({ resource, spanProcessors: [extra.spans] });
    tracing.register();
    const meters = new MeterProvider({ resource, readers: [extra.reader] });
    metrics.setGlobalMeterProvider(meters);
    flushers = [() => tracing.forceFlush(), () => meters.forceFlush()];
  }
  propagation.setGlobalPropagator(W3C);
  return telemetryOf(flushers);
}

function telemetryOf(flushers: (() => Promise<void>)[]): Telemetry {
  const tracer = trace.getTracer('oci-import');
  const meter = metrics.getMeter('oci-import');
  const counters: Record<CounterName, ReturnType<typeof meter.createCounter>> = {
    imports: meter.createCounter('oci_import.imports', {
      description: 'Imports that ended, by outcome (succeeded, failed, canceled) and error code',
    }),
    bytes: meter.createCounter('oci_import.bytes', {
      unit: 'By',
      description: 'Blob bytes done, by outcome: copied, mounted (cross-repository), existed (already in the target)',
    }),
    'sync.items': meter.createCounter('oci_import.sync.items', {
      description: 'Tags a sync pass handled, by result: enqueued, unchanged, in_progress, error',
    }),
    'sync.passes': meter.createCounter('oci_import.sync.passes', {
      description: 'Sync passes, by outcome: ok, errors',
    }),
  };
  const histograms: Record<HistogramName, ReturnType<typeof meter.createHistogram>> = {
    'step.duration': meter.createHistogram('oci_import.step.duration', {
      unit: 'ms',
      description: 'Duration of a queue step, by step and outcome',
    }),
    'queue.wait': meter.createHistogram('oci_import.queue.wait', {
      unit: 'ms',
      description: 'From a step message becoming visible on the queue to its step starting',
    }),
  };
  const carrier = (): Record<string, string> => {
    const c: Record<string, string> = {};
    W3C.inject(context.active(), c, {
      set: (o, k, v) => {
        o[k] = v;
      },
    });
    return c;
  };
  return {
    enabled: true,
    async span(name, options, fn) {
      const parent: Context = options.parent
        ? W3C.extract(
            ROOT_CONTEXT,
            { traceparent: options.parent },
            { get: (o, k) => o[k as 'traceparent'], keys: (o) => Object.keys(o) },
          )
        : context.active();
      return tracer.startActiveSpan(
        name,
        { kind: KINDS[options.kind ?? 'internal'], attributes: clean(options.attributes) },
        parent,
        async (span) => {
          try {
            return await fn();
          } catch (err) {
            span.recordException(err as Error);
            span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
            throw err;
          } finally {
            span.end();
          }
        },
      );
    },
    annotate: (a) => trace.getActiveSpan()?.setAttributes(clean(a)),
    traceparent: () => (trace.getActiveSpan() ? carrier().traceparent : undefined),
    traceId: () => trace.getActiveSpan()?.spanContext().traceId,
    count: (name, value, a) => counters[name].add(value, clean(a)),
    record: (name, value, a) => histograms[name].record(value, clean(a)),
    flush: async () => {
      await Promise.all(flushers.map((f) => f().catch(() => undefined)));
    },
  };
}
