import { describe, expect, it } from 'vitest';
import { lineOf, parseRules, RulesError } from '../../../lib/sync/rules.js';
import { selectTags, tagVersion } from '../../../lib/sync/select.js';

const good = `{
  "rules": [
    {
      "source": "docker.io/library/nginx",
      "target": "mirror/nginx",
      "tags": { "include": ["^1\\\\.2[0-9]\\\\."], "exclude": ["-alpine$"] }
    },
    {
      "source": "docker.io/library/redis",
      "tags": { "semver": ">=6", "keepNewest": 5 },
      "platforms": ["linux/amd64"]
    }
  ]
}`;

function refusal(text: string): RulesError {
  try {
    parseRules(text, 'rules.json');
  } catch (err) {
    if (err instanceof RulesError) return err;
    throw err;
  }
  throw new Error('accepted');
}

describe('sync rules', () => {
  it('parses a rules file', () => {
    const rules = parseRules(good, 'rules.json');
    expect(rules).toHaveLength(2);
    expect(rules[1]!.tags?.keepNewest).toBe(5);
  });

  it('accepts a bare array of rules', () => {
    expect(parseRules('[{"source":"ghcr.io/org/app"}]', 'x')).toHaveLength(1);
  });

  it.each([
    ['bad JSON', '{\n  "rules": [\n    { "source": "a" ,, }\n  ]\n}', 3, 'not valid JSON'],
    [
      'misspelt field',
      '{\n  "rules": [\n    {\n      "source": "docker.io/library/nginx",\n      "tgas": {}\n    }\n  ]\n}',
      5,
      'unknown field "tgas"',
    ],
    [
      'bad regex',
      '{\n  "rules": [\n    {\n      "source": "docker.io/library/nginx",\n      "tags": {\n        "include": ["(unclosed"]\n      }\n    }\n  ]\n}',
      6,
      'not a pattern the linear-time matcher takes (RE2 syntax: no lookarounds or backreferences): missing closing )',
    ],
    [
      'backtracking-only regex',
      '{\n  "rules": [\n    {\n      "source": "docker.io/library/nginx",\n      "tags": {\n        "exclude": ["^(?!1\\\\.)"]\n      }\n    }\n  ]\n}',
      6,
      'invalid or unsupported Perl syntax: `(?!`',
    ],
    [
      'bad semver range',
      '{"rules": [\n {"source": "nginx",\n  "tags": {"semver": "greater than one"}}]}',
      3,
      'not a valid semver range',
    ],
    [
      'uppercase source',
      '{"rules": [\n {"source": "nginx"},\n {"source": "docker.io/Library/Redis"}]}',
      3,
      'lowercase',
    ],
    ['source with tag', '{"rules": [\n {\n  "source": "nginx:1.27"}]}', 3, 'select its tags'],
    ['keepNewest zero', '{"rules": [\n {"source": "nginx",\n  "tags": {\n   "keepNewest": 0}}]}', 4, 'keepNewest'],
    ['no rules', '{"rules": []}', 1, 'rules'],
  ])('refuses %s naming the line', (_name, text, line, fragment) => {
    const err = refusal(text);
    expect(err.line).toBe(line);
    expect(err.message).toContain(`rules.json:${line}`);
    expect(err.message).toContain(fragment);
  });

  it('locates values by path', () => {
    expect(lineOf(good, ['rules', 1, 'tags', 'semver'])).toBe(10);
    expect(lineOf(good, ['rules', 0, 'target'])).toBe(5);
    expect(lineOf(good, ['rules', 3])).toBeUndefined();
  });
});

describe('tag selection', () => {
  const tags = [
    'latest',
    '1.26.0',
    '1.27.1',
    '1.27.1-alpine',
    '1.27',
    '1.28.0',
    '1.9',
    'v2.0.0',
    'dev-1',
    'stable',
    '1.25.4',
    '1.29.0-rc1',
  ];

  it('reads versions from tags', () => {
    expect(tagVersion('1.27')?.version).toBe('1.27.0');
    expect(tagVersion('v2')?.version).toBe('2.0.0');
    expect(tagVersion('1.27-alpine')?.version).toBe('1.27.0-alpine');
    expect(tagVersion('latest')).toBeUndefined();
    expect(tagVersion('dev-1')).toBeUndefined();
  });

  it('includes and excludes by regular expression', async () => {
    expect(await selectTags(tags, { include: ['^1\\.2[0-9]'], exclude: ['-alpine$', '-rc'] })).toEqual([
      '1.28.0',
      '1.27.1',
      '1.27',
      '1.26.0',
      '1.25.4',
    ]);
    expect(await selectTags(['v1', 'v2', 'dev-1'], { include: ['^v[0-9]+$'] })).toEqual(['v2', 'v1']);
  });

  it('filters by semver range, leaving prereleases and non-versions out', async () => {
    expect(await selectTags(tags, { semver: '>=1.27 <2' })).toEqual(['1.28.0', '1.27.1', '1.27']);
    expect(await selectTags(tags, { semver: '^2' })).toEqual(['v2.0.0']);
  });

  it('keeps the newest N by semver', async () => {
    expect(await selectTags(tags, { keepNewest: 3 })).toEqual(['v2.0.0', '1.29.0-rc1', '1.28.0']);
    expect(await selectTags(tags, { semver: '>=1.0.0', keepNewest: 2 })).toEqual(['v2.0.0', '1.28.0']);
  });

  it('selects every tag without filters', async () => {
    expect(await selectTags(['b', 'a', '1.0'], undefined)).toEqual(['1.0', 'a', 'b']);
  });
});
