/**
 * Telemetry costs nothing when it is not asked for (issue 25): a process that loads every function module of the
 * app (dist/functions, as the Functions worker does) resolves no OpenTelemetry module without
 * OTEL_EXPORTER_OTLP_ENDPOINT or APPLICATIONINSIGHTS_CONNECTION_STRING, and does with the first. Seen through a
 * module resolve hook (node:module register) that writes every resolved URL to a file. Needs `npm run build`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { telemetry, telemetryConfigured, startTelemetry, traceFields } from '../../../lib/telemetry/index.js';

const root = join(import.meta.dirname, '..', '..', '..');
const work = mkdtempSync(join(tmpdir(), 'oci-import-lazy-'));
const functions = join(root, 'dist', 'functions');

/** The URLs a process resolves while it imports every function module, then waits 300 ms (the SDK loads asynchronously). */
function resolvedBy(env: Record<string, string>): string[] {
  const log = join(work, `resolved-${Object.keys(env).length}.txt`);
  const hooks = join(work, 'hooks.mjs');
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) { const r = await next(specifier, context); appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; }\n`,
  );
  const register = join(work, 'register.mjs');
  writeFileSync(
    register,
    `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
  );
  const files = readdirSync(functions)
    .filter((f) => f.endsWith('.js'))
    .map((f) => pathToFileURL(join(functions, f)).href);
  const code = `for (const f of ${JSON.stringify(files)}) await import(f); await new Promise((r) => setTimeout(r, 300)); process.exit(0);`;
  const run = spawnSync(
    process.execPath,
    ['--import', pathToFileURL(register).href, '--input-type=module', '-e', code],
    {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', TARGET_REGISTRY: 'r.example', ...env },
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  expect(run.status, run.stderr).toBe(0);
  return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
}

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe.runIf(existsSync(functions))('telemetry is loaded only when asked for', () => {
  it('without its settings: no OpenTelemetry module is resolved', () => {
    const urls = resolvedBy({});
    expect(urls.some((u) => u.includes('/dist/functions/imports.js'))).toBe(true);
    expect(urls.filter((u) => /opentelemetry|lib\/telemetry\/sdk/.test(u))).toEqual([]);
  }, 60_000);

  it('with OTEL_EXPORTER_OTLP_ENDPOINT: the SDK and the OTLP exporters are', () => {
    const urls = resolvedBy({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' });
    expect(urls.some((u) => u.includes('lib/telemetry/sdk.js'))).toBe(true);
    expect(urls.some((u) => u.includes('@opentelemetry/exporter-trace-otlp-http'))).toBe(true);
    expect(urls.some((u) => u.includes('monitor-opentelemetry'))).toBe(false);
  }, 60_000);
});

describe('the no-op telemetry', () => {
  it('reads only the standard settings, and without them stays a no-op: no trace fields, spans just run', async () => {
    expect(telemetryConfigured({})).toBe(false);
    expect(telemetryConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: ' ' })).toBe(false);
    expect(telemetryConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' })).toBe(true);
    expect(telemetryConfigured({ APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=x' })).toBe(true);
    await startTelemetry({});
    expect(telemetry().enabled).toBe(false);
    expect(await telemetry().span('x', {}, async () => 42)).toBe(42);
    expect(traceFields(10)).toEqual({});
  });
});
