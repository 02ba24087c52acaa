/**
 * The one error catalogue (lib/error-codes.ts) and what is derived from it: the code type (a free string fails
 * typecheck, see the @ts-expect-error below), the OpenAPI `error.code` enums, and docs/errors.md's table.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openApiDocument } from '../../lib/api/openapi.js';
import { ERROR_CODES, codesAnswered, isErrorCode, type CodeEntry, type Operation } from '../../lib/error-codes.js';
import { OciImportError, errorCode } from '../../lib/errors.js';
import { RegistryError } from '../../lib/oci/errors.js';
import { ERRORS_DOC, renderErrorTable, withErrorTable } from '../../scripts/docs/errors-table.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('the error catalogue', () => {
  it('docs/errors.md carries the table generated from it (npm run docs:errors)', () => {
    const doc = readFileSync(ERRORS_DOC, 'utf8');
    expect(doc).toBe(withErrorTable(doc));
    for (const code of Object.keys(ERROR_CODES)) expect(renderErrorTable()).toContain(`| \`${code}\` |`);
  });

  it('types the code of every error: a code not in the catalogue does not compile', () => {
    // @ts-expect-error -- not a catalogued code
    const free = new OciImportError('SOMETHING_NEW', 'x');
    expect(isErrorCode(free.code)).toBe(false);
    expect(isErrorCode('HTTP_503')).toBe(true);
    expect(errorCode(new TypeError('bug'))).toBe('INTERNAL');
  });

  it('every quoted code an error is made with in lib/ and functions/ is catalogued', () => {
    // (ConfigError's first argument is the setting's name; its code is INVALID_SETTING)
    const made = /new (?!ConfigError)[A-Za-z]*Error\(\s*(?:\d+,\s*)?'([A-Z][A-Z0-9_]+)'/g;
    const seen = new Set<string>();
    for (const file of [...files('lib'), ...files('functions')]) {
      for (const m of readFileSync(file, 'utf8').matchAll(made)) seen.add(m[1]!);
    }
    expect(seen.size).toBeGreaterThan(30);
    expect([...seen].filter((code) => !isErrorCode(code))).toEqual([]);
  });

  it("a registry's own code is kept in the message, the error's code is HTTP_<status>; a spec code is ours", () => {
    const own = new RegistryError('GET', 'u', 400, [{ code: 'ACME_QUOTA', message: 'over quota' }]);
    expect(own.code).toBe('HTTP_400');
    expect(own.message).toContain('ACME_QUOTA: over quota');
    expect(new RegistryError('GET', 'u', 404, [{ code: 'MANIFEST_UNKNOWN', message: 'm' }]).code).toBe(
      'MANIFEST_UNKNOWN',
    );
  });

  it("the OpenAPI error enums are the catalogue's codes of each operation and status", () => {
    const doc = openApiDocument('http://127.0.0.1/api');
    const documented: string[] = [];
    for (const methods of Object.values(doc.paths as Json)) {
      for (const op of Object.values(methods as Json) as Json[]) {
        for (const [status, res] of Object.entries(op.responses as Json) as [string, Json][]) {
          const codes = res.headers?.['x-ms-error-code']?.schema?.enum as string[] | undefined;
          if (!codes) continue;
          expect(codes).toEqual(codesAnswered(op.operationId as Operation, Number(status)));
          documented.push(...codes);
        }
      }
    }
    // every code the catalogue says the API answers is in some enum, with its status
    const answered = Object.entries(ERROR_CODES)
      .filter(([, e]: [string, CodeEntry]) => (e.answers?.length ?? 0) > 0)
      .map(([c]) => c);
    expect(new Set(documented)).toEqual(new Set(answered));
    for (const code of answered) expect((ERROR_CODES as Record<string, CodeEntry>)[code]!.http).toBeDefined();
  });
});
