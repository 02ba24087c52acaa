/**
 * The bounds a request body meets before anything walks it (lib/request/request.ts): its size, its emptiness, and
 * how deep it nests — 64 KiB of `[` is 30,000 levels, which recursive code (hashing a body, writing it as JSON)
 * cannot walk. The HTTP trigger's tests show the 400s and 413s a caller gets; these pin each edge.
 */
import { describe, expect, it } from 'vitest';
import {
  MAX_JSON_DEPTH,
  MAX_REQUEST_BYTES,
  nestedDeeper,
  parseRequestText,
  RequestError,
} from '../../../lib/request/request.js';

/** `[[…[1]…]]` nested `levels` deep. */
const nested = (levels: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < levels; i++) v = [v];
  return v;
};

describe('request bounds', () => {
  it('measures nesting by arrays and objects alike; strings and null add no level', () => {
    expect(nestedDeeper('text', 0)).toBe(false);
    expect(nestedDeeper(null, 0)).toBe(false);
    expect(nestedDeeper({ a: 'x' }, 1)).toBe(false);
    expect(nestedDeeper({ a: 'x' }, 0)).toBe(true);
    expect(nestedDeeper({ a: ['x'] }, 1)).toBe(true);
    expect(nestedDeeper({ a: ['x'] }, 2)).toBe(false);
    expect(nestedDeeper({ a: [{ b: null }] }, 2)).toBe(true);
    expect(nestedDeeper(nested(MAX_JSON_DEPTH), MAX_JSON_DEPTH)).toBe(false);
    expect(nestedDeeper(nested(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH)).toBe(true);
    // the deep branch found wherever it is, not only in the first child
    expect(nestedDeeper({ a: 'x', b: [1], c: { d: [[['deep']]] } }, 4)).toBe(true);
    // 30,000 levels: no stack overflow
    expect(nestedDeeper(JSON.parse(`${'['.repeat(30_000)}${']'.repeat(30_000)}`), MAX_JSON_DEPTH)).toBe(true);
  });

  it(`takes a body of exactly ${MAX_REQUEST_BYTES} bytes (counted in UTF-8) and refuses one byte more with 413`, () => {
    const padded = (bytes: number) => {
      const head = '{"source":"a/b:1","pad":"';
      return `${head}${'x'.repeat(bytes - head.length - 2)}"}`;
    };
    expect(parseRequestText(padded(MAX_REQUEST_BYTES))).toMatchObject({ source: 'a/b:1' });
    expect(() => parseRequestText(padded(MAX_REQUEST_BYTES + 1))).toThrow(
      expect.objectContaining({ status: 413, code: 'BODY_TOO_LARGE' }),
    );
    // é is two bytes: the limit is on bytes, not characters
    const wide = `{"pad":"${'é'.repeat(MAX_REQUEST_BYTES / 2)}"}`;
    expect(wide.length).toBeLessThan(MAX_REQUEST_BYTES);
    expect(() => parseRequestText(wide)).toThrow(expect.objectContaining({ status: 413 }));
  });

  it('refuses an empty or blank body, and text that is not JSON, with 400 INVALID_JSON', () => {
    for (const text of ['', '   \n', 'not json', '{"source": }']) {
      const err = (() => {
        try {
          parseRequestText(text);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(RequestError);
      expect(err).toMatchObject({ status: 400, code: 'INVALID_JSON', temporary: false });
    }
    // a blank body is told as such, not as a JSON syntax error
    expect(() => parseRequestText(' \n\t')).toThrow(/the request body is empty/);
    expect(() => parseRequestText(JSON.stringify(nested(MAX_JSON_DEPTH + 1)))).toThrow(
      expect.objectContaining({ status: 400, code: 'JSON_TOO_DEEP' }),
    );
  });

  it('a RequestError is temporary only for a 5xx status', () => {
    expect(new RequestError(400, 'INVALID_BODY', 'm').temporary).toBe(false);
    expect(new RequestError(499, 'INVALID_BODY', 'm').temporary).toBe(false);
    expect(new RequestError(500, 'INVALID_BODY', 'm').temporary).toBe(true);
    expect(new RequestError(503, 'INVALID_BODY', 'm').temporary).toBe(true);
  });
});
