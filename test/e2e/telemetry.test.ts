/**
 * Traces and metrics end to end (issue 25): the local Functions host as a separate process on Azurite, with
 * OTEL_EXPORTER_OTLP_ENDPOINT at an OTLP/HTTP JSON receiver in this test (a node http server on 127.0.0.1 that
 * keeps what arrives at /v1/traces and /v1/metrics), one import between two real registries (distribution). The
 * POST's span and the spans of its queue steps (plan, blobs, and finalize — a step of its own, or the last blob
 * step's when it has the time) share one trace id and carry the import id, the step that ends it its status;
 * import and byte metrics arrive. Short export intervals: OTEL_BSP_SCHEDULE_DELAY, OTEL_METRIC_EXPORT_INTERVAL.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost, type HostProcess } from '../host/host-process.js';
import { startAzurite, type RunningAzurite } from '../support/azurite.js';
import { buildImage, type BuiltImage } from '../support/fixtures.js';
import { requireRegistryTools, startRegistry, type RunningRegistry } from '../support/registry.js';
import { manifestDigest, pushOciLayout } from '../support/skopeo.js';

const hasTools = requireRegistryTools();
const KEY = randomBytes(16).toString('hex');

type AnyValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
interface KeyValue {
  key: string;
  value: AnyValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: KeyValue[];
}
interface DataPoint {
  attributes?: KeyValue[];
  asInt?: string | number;
  asDouble?: number;
  count?: string | number;
  sum?: number;
}
interface OtlpMetric {
  name: string;
  sum?: { dataPoints: DataPoint[] };
  histogram?: { dataPoints: DataPoint[] };
}

const attr = (kv: KeyValue[] | undefined, key: string): string | number | boolean | undefined => {
  const v = kv?.find((a) => a.key === key)?.value;
  return (
    v?.stringValue ?? (v?.intValue !== undefined ? Number(v.intValue) : undefined) ?? v?.doubleValue ?? v?.boolValue
  );
};

/** The receiver: what an OTLP/HTTP collector is to the exporters, with JSON bodies. */
async function startReceiver(): Promise<{
  url: string;
  server: Server;
  spans: OtlpSpan[];
  metrics: OtlpMetric[];
  contentTypes: Set<string>;
}> {
  const spans: OtlpSpan[] = [];
  const metrics: OtlpMetric[] = [];
  const contentTypes = new Set<string>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      contentTypes.add(String(req.headers['content-type']));
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
      if (req.url === '/v1/traces') {
        for (const rs of (body.resourceSpans ?? []) as { scopeSpans: { spans: OtlpSpan[] }[] }[])
          for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      } else if (req.url === '/v1/metrics') {
        for (const rm of (body.resourceMetrics ?? []) as { scopeMetrics: { metrics: OtlpMetric[] }[] }[])
          for (const sm of rm.scopeMetrics) metrics.push(...sm.metrics);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, spans, metrics, contentTypes };
}

describe.skipIf(!hasTools)(
  'telemetry: one trace per import, metrics, through OTLP/HTTP JSON from the local host',
  () => {
    let azurite: RunningAzurite;
    let src: RunningRegistry;
    let dst: RunningRegistry;
    let host: HostProcess | undefined;
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    let work: string;
    let image: BuiltImage;

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'oci-import-otel-'));
      [azurite, src, dst, receiver] = await Promise.all([
        startAzurite(),
        startRegistry(),
        startRegistry(),
        startReceiver(),
      ]);
      image = await buildImage({ dir: join(work, 'img'), seed: 'otel', layersPerPlatform: 2, layerSize: 200_000 });
      await pushOciLayout(image.layoutDir, `${src.host}/team/app:1`);
      host = await startHost({
        args: ['--main', 'functions/*.ts', '--port', '0', '--no-azurite'],
        readyTimeoutMs: 60_000,
        env: {
          AzureWebJobsStorage: azurite.connectionString,
          TARGET_REGISTRY: dst.host,
          INSECURE_REGISTRIES: `${src.host},${dst.host}`,
          ALLOWED_SOURCES: src.host,
          CREDENTIAL_KEY: Buffer.alloc(32, 9).toString('base64'),
          IMPORT_QUEUE: 'imports',
          LOCAL_HOST_FUNCTION_KEY: KEY,
          INLINE_IMPORT_BYTES: '0', // a step per blob: plan, blob…, finalize
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
          OTEL_SERVICE_NAME: 'oci-import-test',
          OTEL_BSP_SCHEDULE_DELAY: '200',
          OTEL_METRIC_EXPORT_INTERVAL: '500',
          APPLICATIONINSIGHTS_CONNECTION_STRING: undefined,
          SYNC_RULES: undefined,
          SYNC_RULES_FILE: undefined,
        },
      });
    }, 300_000);

    afterAll(async () => {
      await host?.stop('SIGTERM');
      await new Promise((resolve) => (receiver ? receiver.server.close(resolve) : resolve(undefined)));
      await Promise.all([azurite?.stop(), src?.stop(), dst?.stop()]);
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('the POST and every queue step of one import are spans of one trace with the import id; import and byte metrics arrive', async () => {
      const res = await fetch(`${host!.url}/api/imports`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-functions-key': KEY },
        body: JSON.stringify({ source: `${src.host}/team/app:1`, images: ['otel/app:1'] }),
      });
      expect(res.status).toBe(202);
      const { id } = (await res.json()) as { id: string };
      for (const deadline = Date.now() + 120_000; ;) {
        const s = (await (
          await fetch(`${host!.url}/api/imports/${id}`, { headers: { 'x-functions-key': KEY } })
        ).json()) as { status: string };
        if (s.status === 'succeeded') break;
        if (s.status === 'failed' || Date.now() > deadline)
          throw new Error(`import ${JSON.stringify(s)}\n${host!.output().slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(await manifestDigest(`${dst.host}/otel/app:1`)).toBe(image.digest);

      // what the exporters send within a few intervals
      const post = () =>
        receiver.spans.find((s) => s.name === 'POST /api/imports' && attr(s.attributes, 'oci_import.id') === id);
      const stepsOf = (traceId: string) =>
        receiver.spans.filter((s) => s.traceId === traceId && s.name.startsWith('import '));
      const bytesCopied = () =>
        receiver.metrics
          .filter((m) => m.name === 'oci_import.bytes')
          .flatMap((m) => m.sum?.dataPoints ?? [])
          .filter((p) => attr(p.attributes, 'outcome') === 'copied')
          .reduce((n, p) => Math.max(n, Number(p.asInt ?? p.asDouble ?? 0)), 0);
      const imports = () =>
        receiver.metrics
          .filter((m) => m.name === 'oci_import.imports')
          .flatMap((m) => m.sum?.dataPoints ?? [])
          .filter((p) => attr(p.attributes, 'outcome') === 'succeeded');
      for (const deadline = Date.now() + 30_000; ;) {
        const root = post();
        const names = root ? new Set(stepsOf(root.traceId).map((s) => s.name)) : new Set();
        const ended =
          root && stepsOf(root.traceId).some((s) => attr(s.attributes, 'oci_import.status') === 'succeeded');
        if (
          root &&
          ['import plan', 'import blob'].every((n) => names.has(n)) &&
          ended &&
          bytesCopied() > 0 &&
          imports().length
        )
          break;
        if (Date.now() > deadline) {
          throw new Error(
            `not all telemetry arrived: spans ${JSON.stringify(receiver.spans.map((s) => [s.name, s.traceId]))}, metrics ${[...new Set(receiver.metrics.map((m) => m.name))].join(', ')}\n${host!.output().slice(-3000)}`,
          );
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      const root = post()!;
      expect(root.kind).toBe(2); // SERVER
      expect(root.parentSpanId ?? '').toBe('');
      const steps = stepsOf(root.traceId);
      // every step span of this trace is this import's, with its source and target
      for (const s of steps) {
        expect(attr(s.attributes, 'oci_import.id'), s.name).toBe(id);
        expect(attr(s.attributes, 'oci_import.source'), s.name).toBe(`${src.host}/team/app:1`);
        expect(String(attr(s.attributes, 'oci_import.target')), s.name).toContain(`${dst.host}/otel/app:1`);
      }
      // the step that finalized (its own, or the last blob step) says how the import ended
      expect(steps.filter((s) => attr(s.attributes, 'oci_import.status') === 'succeeded')).toHaveLength(1);
      const blobs = steps.filter((s) => s.name === 'import blob');
      expect(new Set(blobs.map((s) => attr(s.attributes, 'oci_import.blob'))).size).toBe(image.blobs.length);
      expect(blobs.every((s) => Number(attr(s.attributes, 'oci_import.blob_bytes')) > 0)).toBe(true);
      // the plan step's parent is the POST's span: the queue message carried its traceparent
      expect(steps.find((s) => s.name === 'import plan')!.parentSpanId).toBe(root.spanId);
      // no span of another trace names this import
      expect(
        receiver.spans
          .filter((s) => attr(s.attributes, 'oci_import.id') === id)
          .every((s) => s.traceId === root.traceId),
      ).toBe(true);
      // cumulative: every blob of the image copied once (nothing was in the target)
      expect(bytesCopied()).toBe(image.blobs.reduce((n, b) => n + b.size, 0));
      expect(receiver.metrics.some((m) => m.name === 'oci_import.step.duration')).toBe(true);
      expect(receiver.metrics.some((m) => m.name === 'oci_import.queue.wait')).toBe(true);
      expect([...receiver.contentTypes].every((t) => t.startsWith('application/json'))).toBe(true);
      // log lines of the POST and of the steps carry the import id and the trace id
      expect(host!.output()).toMatch(new RegExp(`import ${id} queued(?: by [^:]+)?: .*\\[trace ${root.traceId}\\]`));
      expect(host!.output()).toMatch(new RegExp(`job ${id} planned: .*\\[trace ${root.traceId}\\]`));
    });
  },
);
