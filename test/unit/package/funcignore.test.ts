/**
 * `.funcignore` as the two deployment tools read it (scripts/package/funcignore.ts), case by case from their code:
 * azd through github.com/denormal/go-gitignore + danwakefield/fnmatch, Core Tools through its GitIgnoreParser
 * (a port of codemix/gitignore-parser). The cases where they disagree are the reason `npm run package` checks both.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AzdIgnore,
  CoreToolsIgnore,
  azdFiles,
  azdRemoteBuildError,
  coreToolsFiles,
  fnmatch,
  packageFiles,
  remoteBuildOf,
} from '../../../scripts/package/funcignore.js';

describe('fnmatch (danwakefield/fnmatch)', () => {
  const cases: [string, string, boolean, boolean][] = [
    // pattern, text, FNM_PATHNAME, matches
    ['*.ts', 'a.ts', false, true],
    ['*.ts', 'lib/a.ts', false, true], // flags 0: `*` crosses `/`
    ['*.ts', 'lib/a.ts', true, false],
    ['lib/*.ts', 'lib/a.ts', true, true],
    ['lib/*', 'lib/x/a.ts', true, false],
    ['a?c', 'abc', false, true],
    ['a?c', 'a/c', true, false],
    ['[a-c]x', 'bx', false, true],
    ['[!a-c]x', 'bx', false, false],
    ['[!a-c]x', 'dx', false, true],
    ['\\*x', '*x', false, true],
    ['\\*x', 'ax', false, false],
    ['*', '.hidden', false, true], // no FNM_PERIOD
    ['node_modules', 'node_modules', false, true],
    ['node_modules', 'node_modules2', false, false],
  ];
  it.each(cases)('%s vs %s (pathname %s) → %s', (pattern, text, pathname, expected) => {
    expect(fnmatch(pattern, text, pathname)).toBe(expected);
  });
});

describe('azd: go-gitignore', () => {
  const cases: [string, string, boolean, boolean][] = [
    // .funcignore, path, is a directory, ignored
    ['node_modules', 'node_modules', true, true],
    ['node_modules', 'lib/node_modules', true, true], // a name matches at any depth
    ['/test', 'test', true, true],
    ['/test', 'lib/test', true, false],
    ['/test', 'test.md', false, false],
    ['*.ts', 'functions/imports.ts', false, true],
    ['/*.log', 'lib/a.log', false, true], // anchored names use flags 0: `*` crosses `/`
    ['infra/main.bicep', 'infra/main.bicep', false, true],
    ['infra/main.bicep', 'x/infra/main.bicep', false, false],
    ['build/', 'build', true, true],
    ['build/', 'build', false, false],
    ['*.ts\n!*.d.ts', 'types/a.d.ts', false, false], // the last match decides
    ['!*.d.ts\n*.ts', 'types/a.d.ts', false, true],
    ['**/fixtures', 'fixtures', true, true],
    ['**/fixtures', 'test/fixtures', true, true],
    ['docs/**', 'docs', true, true],
    ['docs/**', 'docs/a/b.md', false, true],
    ['a**b', 'ab', false, false], // `**` inside a segment: the line is invalid and skipped
    ['# node_modules', 'node_modules', true, false],
    ['node_modules   ', 'node_modules', true, true], // trailing blanks dropped
  ];
  it.each(cases)('%j ignores %s (dir %s): %s', (text, path, isDir, expected) => {
    expect(new AzdIgnore(text).ignores(path, isDir)).toBe(expected);
  });
});

describe('Core Tools: GitIgnoreParser', () => {
  const cases: [string, string, boolean][] = [
    // .funcignore, file path, accepted (packaged)
    ['node_modules', 'node_modules/undici/index.js', false],
    ['*.ts', 'a.ts', false],
    ['*.ts', 'functions/imports.ts', true], // `*` is [^/]+ and the pattern is anchored: top level only
    ['test', 'test/unit/a.test.ts', false],
    ['test', 'test.md', false], // ended by \b, not by a path boundary
    ['test', 'test-utils/a.js', false],
    ['test', 'tests/a.js', true],
    ['test', 'lib/test/a.js', true],
    ['/dist', 'dist/functions/a.js', false],
    ['!*.d.ts\n*.ts', 'a.d.ts', true], // a negative pattern wins wherever it stands
    ['*.ts\n!*.d.ts', 'a.d.ts', true],
    ['**/*.map', 'dist/a.js.map', false],
    ['**/*.map', 'a.js.map', true],
    ['# comment\n\n/.git', '.gitignore', true], // `.git` then `i`: no word boundary
    ['/.git', '.git', false],
  ];
  it.each(cases)('%j accepts %s: %s', (text, path, expected) => {
    expect(new CoreToolsIgnore(text).accepts(path)).toBe(expected);
  });
});

describe('the two walks and their agreement', () => {
  let root: string | undefined;
  afterEach(() => {
    if (root) rmSync(root, { recursive: true, force: true });
    root = undefined;
  });
  const tree = (files: string[]): string => {
    root = mkdtempSync(join(tmpdir(), 'oci-import-funcignore-'));
    for (const f of files) {
      mkdirSync(dirname(join(root, f)), { recursive: true });
      writeFileSync(join(root, f), f);
    }
    return root;
  };

  it('built-in exclusions: azd .azure/, .funcignore, local.settings.json; Core Tools .git/, .vscode/, .gitignore, project.lock.json', () => {
    const dir = tree([
      'host.json',
      '.azure/env/.env',
      '.git/HEAD',
      '.vscode/settings.json',
      '.gitignore',
      '.funcignore',
      'local.settings.json',
      'sub/local.settings.json',
      'project.lock.json',
    ]);
    expect(azdFiles(dir, '')).toEqual([
      '.git/HEAD',
      '.gitignore',
      '.vscode/settings.json',
      'host.json',
      'project.lock.json',
    ]);
    expect(coreToolsFiles(dir, '')).toEqual(['.azure/env/.env', 'host.json']);
  });

  it('a .funcignore both read alike gives one package; one they read differently is reported file by file', () => {
    const dir = tree([
      'host.json',
      'package.json',
      'lib/a.ts',
      'lib/a.js',
      'a.ts',
      'node_modules/x/index.js',
      'test.md',
    ]);
    const same = packageFiles(dir, '/node_modules\n/a.ts\n');
    expect(same).toEqual({
      files: ['host.json', 'lib/a.js', 'lib/a.ts', 'package.json', 'test.md'],
      onlyAzd: [],
      onlyCoreTools: [],
    });
    expect(packageFiles(dir, 'node_modules\n*.ts\n')).toMatchObject({ onlyAzd: [], onlyCoreTools: ['lib/a.ts'] });
    expect(packageFiles(dir, '/node_modules\n/test\n')).toMatchObject({ onlyAzd: ['test.md'], onlyCoreTools: [] });
  });

  it('follows symlinks (as azd rzip does) without looping', () => {
    const dir = tree(['lib/a.js']);
    symlinkSync(join(dir, 'lib'), join(dir, 'linked'));
    symlinkSync(dir, join(dir, 'lib', 'loop'));
    expect(azdFiles(dir, '')).toEqual(['lib/a.js', 'linked/a.js']);
  });

  it("azd's remoteBuild rule for JS/TS and the azure.yaml flag", () => {
    expect(azdRemoteBuildError('/dist\n', true)).toBe(
      "'remoteBuild: true' requires '.funcignore' to exclude node_modules",
    );
    expect(azdRemoteBuildError('/node_modules\n', false)).toBe(
      "'remoteBuild: false' cannot be used when '.funcignore' excludes node_modules",
    );
    expect(azdRemoteBuildError('/node_modules\n', true)).toBeUndefined();
    expect(azdRemoteBuildError('/dist\n', undefined)).toBeUndefined();
    expect(remoteBuildOf('services:\n  api:\n    host: function\n    remoteBuild: true\n')).toBe(true);
    expect(remoteBuildOf('services:\n  api:\n    remoteBuild: false # prebuilt\n')).toBe(false);
    expect(remoteBuildOf('services:\n  api:\n    host: function\n')).toBeUndefined();
  });
});
