import { describe, expect, it } from 'vitest';
import {
  InvalidDigestError,
  digestAlgorithm,
  digestHex,
  isDigest,
  parseDigest,
  sha256Digest,
} from '../../../lib/oci/digest.js';

const HEX64 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const HEX128 =
  'cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e';

describe('parseDigest', () => {
  it.each([
    ['sha256', `sha256:${HEX64}`],
    ['sha512', `sha512:${HEX128}`],
    ['all zeros', `sha256:${'0'.repeat(64)}`],
  ])('accepts %s', (_label, input) => {
    const d = parseDigest(input);
    expect(d).toBe(input);
    expect(isDigest(input)).toBe(true);
  });

  it.each([
    ['empty', '', 'the digest is empty'],
    ['short hex', 'sha256:abc', 'sha256 needs 64 hex characters, got 3'],
    ['one hex too many', `sha256:${HEX64}0`, 'sha256 needs 64 hex characters, got 65'],
    ['sha512 with 64 hex', `sha512:${HEX64}`, 'sha512 needs 128 hex characters, got 64'],
    ['empty hex', 'sha256:', 'sha256 needs 64 hex characters, got 0'],
    ['uppercase hex', `sha256:${HEX64.toUpperCase()}`, `hex must be lowercase (sha256:${HEX64})`],
    ['uppercase algorithm', `SHA256:${HEX64}`, 'algorithm must be lowercase ("sha256")'],
    ['unknown algorithm', `md5:${HEX64}`, 'unsupported algorithm "md5"; expected sha256 or sha512'],
    ['sha1', 'sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709', 'unsupported algorithm "sha1"'],
    ['missing algorithm', `:${HEX64}`, 'missing algorithm before ":"'],
    ['bare sha256 hex', HEX64, 'missing algorithm prefix; write "sha256:" before the hex'],
    ['bare sha512 hex', HEX128, 'missing algorithm prefix; write "sha512:" before the hex'],
    ['missing colon', 'sha256abc', 'missing ":" between algorithm and hex'],
    [
      'non-hex character',
      `sha256:${HEX64.slice(0, 10)}g${HEX64.slice(11)}`,
      '"g" at position 11 of the hex part is not a hex character',
    ],
    ['second colon', `sha256:sha256:${HEX64}`, '"s" at position 1 of the hex part'],
    ['leading space', ` sha256:${HEX64}`, 'unsupported algorithm " sha256"'],
    ['trailing newline', `sha256:${HEX64}\n`, '"\\n" at position 65'],
  ])('rejects %s', (_label, input, fragment) => {
    expect(isDigest(input)).toBe(false);
    let caught: unknown;
    try {
      parseDigest(input);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidDigestError);
    const error = caught as InvalidDigestError;
    expect(error.code).toBe('INVALID_DIGEST');
    expect(error.name).toBe('InvalidDigestError');
    expect(error.input).toBe(input);
    expect(error.message).toContain(fragment);
    expect(error.message).toMatch(/^invalid digest "/);
  });

  it('formats the message as the brief example', () => {
    expect(() => parseDigest('sha256:abc')).toThrow(
      'invalid digest "sha256:abc": sha256 needs 64 hex characters, got 3',
    );
  });
});

describe('sha256Digest', () => {
  it.each([
    ['empty input', new Uint8Array(), `sha256:${HEX64}`],
    [
      '"abc"',
      new TextEncoder().encode('abc'),
      'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    ],
  ])('hashes %s', (_label, data, expected) => {
    const d = sha256Digest(data);
    expect(d).toBe(expected);
    expect(isDigest(d)).toBe(true);
  });
});

describe('digestHex / digestAlgorithm', () => {
  it.each([
    [`sha256:${HEX64}`, 'sha256', HEX64],
    [`sha512:${HEX128}`, 'sha512', HEX128],
  ])('splits %s', (input, algorithm, hex) => {
    const d = parseDigest(input);
    expect(digestAlgorithm(d)).toBe(algorithm);
    expect(digestHex(d)).toBe(hex);
  });
});
