/**
 * ALLOWED_SOURCES patterns and the host:port split they rest on (lib/policy/sources.ts), one row per rule: the
 * guard's tests (sources.test.ts) show a source refused or let through end to end; these pin the matching itself.
 */
import { describe, expect, it } from 'vitest';
import { explicitlyAllowed, matchesPattern, splitHostPort } from '../../../lib/policy/sources.js';

describe('host and port', () => {
  it.each([
    ['[::1]:5000', { host: '::1', port: '5000' }],
    ['[FE80::1]', { host: 'fe80::1', port: undefined }],
    ['Registry.Example:443', { host: 'registry.example', port: '443' }],
    ['Registry.Example', { host: 'registry.example' }],
    ['::1', { host: '::1' }], // a bare IPv6 address has no port to split off
    ['fe80::1:5000', { host: 'fe80::1:5000' }],
    [':5000', { host: ':5000' }], // no host before the colon: not a host and a port
    ['a[::1]:5000', { host: 'a[::1]:5000' }], // brackets only around the whole host
  ])('%s', (input, want) => {
    expect(splitHostPort(input)).toEqual(want);
  });
});

describe('ALLOWED_SOURCES patterns', () => {
  it.each([
    ['a.example:5000', '*', true],
    ['a.example:5000', 'a.example', true], // no port in the pattern: any port
    ['a.example:5000', 'a.example:5000', true],
    ['a.example:5000', 'a.example:5001', false],
    ['a.example', 'a.example:5000', false],
    ['A.Example', 'a.example', true],
    ['x.a.example', '*.a.example', true],
    ['y.x.a.example', '*.a.example', true],
    ['a.example', '*.a.example', false], // the domain itself is not one of its subdomains
    ['xa.example', '*.a.example', false],
    ['x.a.example:1', '*.a.example:2', false],
    ['x.a.example:2', '*.a.example:2', true],
    ['b.example', 'a.example', false],
    ['[::1]:5000', '[::1]:5000', true],
    ['[::1]:5001', '[::1]:5000', false],
  ])('%s against %s: %s', (registry, pattern, want) => {
    expect(matchesPattern(registry, pattern)).toBe(want);
  });

  it('only a pattern that names a host counts as explicit (the bare * does not, with or without spaces)', () => {
    expect(explicitlyAllowed('127.0.0.1:5000', ['*'])).toBe(false);
    expect(explicitlyAllowed('127.0.0.1:5000', [' * '])).toBe(false);
    expect(explicitlyAllowed('127.0.0.1:5000', ['*', '127.0.0.1:5000'])).toBe(true);
    expect(explicitlyAllowed('127.0.0.1:5000', ['127.0.0.1'])).toBe(true);
    expect(explicitlyAllowed('127.0.0.1:5000', ['10.0.0.1', '127.0.0.1:5001'])).toBe(false);
  });
});
