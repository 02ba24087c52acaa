/**
 * Which files of a function app the deployment tools put in the package, by `.funcignore`, reproduced from the
 * tools' own code because the two do not read the file the same way:
 *
 * - azd (`azd deploy`/`azd up`, Azure/azure-dev `cli/azd/pkg/project/project_utils.go` `createDeployableZip`):
 *   walks the project top-down (`pkg/rzip`, entries sorted by name, symlinks followed), never enters an excluded
 *   directory, leaves out every `.azure` directory, every `.funcignore` and `local.settings.json` file, and
 *   whatever github.com/denormal/go-gitignore says is ignored: the last matching pattern decides; a name
 *   pattern without `/` matches the base name at any depth, with a leading `/` the whole relative path, both
 *   with danwakefield/fnmatch flags 0 (`*` crosses `/`); a pattern with a `/` inside matches the whole path
 *   with FNM_PATHNAME; `**` segments match any number of segments; a trailing `/` matches directories only.
 * - Core Tools (`func azure functionapp publish`, Azure/azure-functions-core-tools `src/Cli/func/Common/
 *   FileSystemHelpers.cs` `GetLocalFiles` and `GitIgnoreParser.cs`, a port of codemix/gitignore-parser): lists
 *   every file except those in `.git` and `.vscode` directories and files named `.funcignore`, `.gitignore`,
 *   `local.settings.json` or `project.lock.json`, then tests each relative path against one regular expression
 *   per polarity, anchored at the start and ended by `\b`: `*` is `[^/]+` (so `*.ts` matches at the top level
 *   only), `**` is `.+`, `test` also matches `test.md` and `test-x/…`; a `!` pattern wins over any other.
 *
 * A `.funcignore` that means the same to both tools gives one package; `packageFiles` computes both lists and
 * `differences` tells where they part.
 */
import { lstatSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';

// ---- danwakefield/fnmatch (flags: FNM_PATHNAME only; no FNM_PERIOD, escapes on) --------------------------

function rangeMatch(p: string[], start: number, test: string): { ok: boolean; next: number } {
  let i = start;
  if (i >= p.length) return { ok: false, next: i };
  let negate = false;
  if (p[i] === '^' || p[i] === '!') {
    negate = true;
    i++;
  }
  let matched = false;
  while (!matched && p.length - i > 1 && p[i] !== ']') {
    let c = p[i++]!;
    if (c === '\\') {
      if (p.length - i > 1) c = p[i++]!;
      else return { ok: false, next: i };
    }
    if (p[i] === '-' && p.length - i > 1 && p[i + 1] !== ']') {
      i++;
      let c2 = p[i++]!;
      if (c2 === '\\') {
        if (i < p.length) c2 = p[i++]!;
        else return { ok: false, next: i };
      }
      if (c <= test && test <= c2) matched = true;
    } else if (c === test) {
      matched = true;
    }
  }
  let closed = false;
  while (!closed && i < p.length) {
    const c = p[i++];
    if (c === '\\' && i < p.length) i++;
    else if (c === ']') closed = true;
  }
  return { ok: closed && matched !== negate, next: i };
}

/**
 * A `*` (or a run of them) at p[pi - 1]: the whole answer (true or false), or where matching goes on (a `*\/` with
 * FNM_PATHNAME skips to past the next slash).
 */
function starMatch(p: string[], pi: number, s: string[], si: number, pathname: boolean): boolean | [number, number] {
  while (pi < p.length && p[pi] === '*') pi++;
  if (pi === p.length) return pathname ? !s.slice(si).includes('/') : true;
  if (pathname && p[pi] === '/') {
    const slash = s.indexOf('/', si);
    if (slash < 0) return false;
    return [pi + 1, slash + 1];
  }
  for (let k = si; k < s.length; k++) {
    if (fnmatchAt(p, pi, s, k, pathname)) return true;
    if (pathname && s[k] === '/') break;
  }
  return false;
}

function fnmatchAt(p: string[], pi: number, s: string[], si: number, pathname: boolean): boolean {
  while (pi < p.length) {
    let c = p[pi++]!;
    switch (c) {
      case '?':
        if (si >= s.length || (pathname && s[si] === '/')) return false;
        si++;
        break;
      case '*': {
        const next = starMatch(p, pi, s, si, pathname);
        if (typeof next === 'boolean') return next;
        [pi, si] = next;
        break;
      }
      case '[': {
        if (si >= s.length || (pathname && s[si] === '/')) return false;
        const r = rangeMatch(p, pi, s[si]!);
        if (!r.ok) return false;
        pi = r.next;
        si++;
        break;
      }
      default:
        // a backslash makes the next character literal
        if (c === '\\' && pi < p.length) c = p[pi++]!;
        if (si >= s.length || s[si] !== c) return false;
        si++;
    }
  }
  return si === s.length;
}

export function fnmatch(pattern: string, text: string, pathname: boolean): boolean {
  return fnmatchAt([...pattern], 0, [...text], 0, pathname);
}

// ---- azd: github.com/denormal/go-gitignore -------------------------------------------------------------

interface GitPattern {
  readonly negated: boolean;
  readonly directory: boolean;
  readonly match: (path: string) => boolean;
}

/** One line of a `.funcignore` as go-gitignore compiles it; undefined for blanks, comments and invalid lines. */
function compileGitLine(raw: string): GitPattern | undefined {
  let line = raw.replace(/\r$/, '');
  if (line === '' || line.startsWith('#')) return undefined;
  // Trailing whitespace is dropped unless escaped.
  while (/[ \t]$/.test(line) && !/\\[ \t]$/.test(line)) line = line.slice(0, -1);
  if (line === '') return undefined;
  let negated = false;
  if (line.startsWith('!')) {
    negated = true;
    line = line.slice(1);
  }
  let anchored = false;
  if (line.startsWith('/')) {
    anchored = true;
    line = line.slice(1);
  }
  let directory = false;
  if (line.endsWith('/') && !line.endsWith('\\/')) {
    directory = true;
    line = line.slice(0, -1);
  }
  if (line === '') return undefined;
  const segments = line.split('/');
  // `**` is a token of its own; the parser accepts it only as a whole segment.
  if (segments.some((seg) => seg.includes('**') && seg !== '**')) return undefined;
  const any = segments.includes('**');
  let match: (path: string) => boolean;
  if (any) {
    const tokens = segments.filter((seg) => seg !== '');
    const walk = (parts: string[], t: string[]): boolean => {
      if (t.length === 0) return parts.length === 0;
      if (t[0] === '**') return walk(parts, t.slice(1)) || (parts.length > 0 && walk(parts.slice(1), t));
      return parts.length > 0 && fnmatch(t[0]!, parts[0]!, true) && walk(parts.slice(1), t.slice(1));
    };
    match = (path) => walk(path.split('/'), tokens);
  } else if (segments.length > 1) {
    match = (path) => fnmatch(line, path, true);
  } else if (anchored) {
    match = (path) => fnmatch(line, path, false);
  } else {
    match = (path) => fnmatch(line, path.slice(path.lastIndexOf('/') + 1), false);
  }
  return { negated, directory, match };
}

export class AzdIgnore {
  private readonly patterns: GitPattern[];

  constructor(text: string) {
    this.patterns = text
      .replace(/^\uFEFF/, '')
      .split('\n')
      .map(compileGitLine)
      .filter((p): p is GitPattern => p !== undefined);
  }

  /** go-gitignore `Relative(path, isdir)` then `Ignore()`: the last matching pattern decides. */
  ignores(relativePath: string, isDir: boolean): boolean {
    for (let i = this.patterns.length - 1; i >= 0; i--) {
      const p = this.patterns[i]!;
      if (p.directory && !isDir) continue;
      if (p.match(relativePath)) return !p.negated;
    }
    return false;
  }
}

// ---- Core Tools: GitIgnoreParser.cs ----------------------------------------------------------------------

function coreToolsRegex(pattern: string): string {
  return pattern
    .replace(/[-[\]/{}()+?.\\^$|]/g, '\\$&')
    .replace(/\*\*/g, '(.+)')
    .replace(/\*/g, '([^\\/]+)');
}

export class CoreToolsIgnore {
  private readonly positive: RegExp;
  private readonly negative: RegExp;

  constructor(text: string) {
    const positive: string[] = [];
    const negative: string[] = [];
    for (const raw of text.split('\n')) {
      let line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const isNegative = line.startsWith('!');
      if (isNegative) line = line.slice(1);
      if (line.startsWith('/')) line = line.slice(1);
      (isNegative ? negative : positive).push(coreToolsRegex(line));
    }
    const compile = (parts: string[]) => (parts.length > 0 ? new RegExp(`^((${parts.join(')|(')}))\\b`) : /$^/);
    this.positive = compile(positive);
    this.negative = compile(negative);
  }

  accepts(relativePath: string): boolean {
    const input = relativePath === '/' ? '' : relativePath;
    return this.negative.test(input) || !this.positive.test(input);
  }
}

// ---- the two walks ---------------------------------------------------------------------------------------

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function isDirectory(path: string): boolean {
  const info = lstatSync(path);
  return info.isSymbolicLink() ? statSync(path).isDirectory() : info.isDirectory();
}

/**
 * azd's package: relative file paths in the order the zip gets them. Without a `.funcignore`, azd leaves out
 * node_modules unless `remoteBuild` is explicitly false.
 */
export function azdFiles(root: string, funcignore: string | undefined, remoteBuild?: boolean): string[] {
  const ignore = funcignore === undefined ? undefined : new AzdIgnore(funcignore);
  const out: string[] = [];
  const seen = new Set<string>();
  const walk = (dir: string, rel: string): void => {
    const real = realpathSync(dir);
    if (seen.has(real)) return; // a symlink cycle (azd stops at depth 40)
    seen.add(real);
    for (const name of readdirSync(dir).sort(byName)) {
      const path = join(dir, name);
      const relPath = rel ? `${rel}/${name}` : name;
      const dirEntry = isDirectory(path);
      if (name === '.azure' && dirEntry) continue;
      if (name === '.funcignore' && !dirEntry) continue;
      if (name === 'local.settings.json' && !dirEntry) continue;
      if (ignore ? ignore.ignores(relPath, dirEntry) : name === 'node_modules' && dirEntry && remoteBuild !== false)
        continue;
      if (dirEntry) walk(path, relPath);
      else out.push(relPath);
    }
    seen.delete(real);
  };
  walk(root, '');
  return out;
}

const CORE_TOOLS_SKIPPED_DIRECTORIES = ['.git', '.vscode'];
const CORE_TOOLS_SKIPPED_FILES = ['.funcignore', '.gitignore', 'local.settings.json', 'project.lock.json'];

/** Core Tools' package: relative file paths, sorted. */
export function coreToolsFiles(root: string, funcignore: string | undefined): string[] {
  const ignore = funcignore === undefined ? undefined : new CoreToolsIgnore(funcignore);
  const out: string[] = [];
  const seen = new Set<string>();
  const walk = (dir: string, rel: string): void => {
    const real = realpathSync(dir);
    if (seen.has(real)) return;
    seen.add(real);
    for (const name of readdirSync(dir).sort(byName)) {
      const path = join(dir, name);
      const relPath = rel ? `${rel}/${name}` : name;
      if (isDirectory(path)) {
        if (!CORE_TOOLS_SKIPPED_DIRECTORIES.includes(name.toLowerCase())) walk(path, relPath);
      } else if (!CORE_TOOLS_SKIPPED_FILES.includes(name.toLowerCase()) && (!ignore || ignore.accepts(relPath))) {
        out.push(relPath);
      }
    }
    seen.delete(real);
  };
  walk(root, '');
  return out.sort(byName);
}

export interface PackageList {
  /** The files both tools would package, in azd's order. */
  readonly files: readonly string[];
  /** Files only azd would package, and files only Core Tools would. Both empty when the tools agree. */
  readonly onlyAzd: readonly string[];
  readonly onlyCoreTools: readonly string[];
}

export function packageFiles(root: string, funcignore: string | undefined, remoteBuild?: boolean): PackageList {
  const azd = azdFiles(root, funcignore, remoteBuild);
  const core = new Set(coreToolsFiles(root, funcignore));
  const azdSet = new Set(azd);
  return {
    files: azd,
    onlyAzd: azd.filter((f) => !core.has(f)),
    onlyCoreTools: [...core].filter((f) => !azdSet.has(f)),
  };
}

/**
 * azd's rule for JS/TS function apps (`resolveFunctionAppRemoteBuild` in service_target_functionapp.go):
 * `remoteBuild: true` needs node_modules excluded, `remoteBuild: false` needs it included; unset, remote
 * build is on exactly when it is excluded. Returns azd's error, or undefined.
 */
export function azdRemoteBuildError(
  funcignore: string | undefined,
  remoteBuild: boolean | undefined,
): string | undefined {
  if (funcignore === undefined) return undefined;
  const excluded = new AzdIgnore(funcignore).ignores('node_modules', true);
  if (remoteBuild === true && !excluded) return "'remoteBuild: true' requires '.funcignore' to exclude node_modules";
  if (remoteBuild === false && excluded)
    return "'remoteBuild: false' cannot be used when '.funcignore' excludes node_modules";
  return undefined;
}

/** `remoteBuild` of the function service in azure.yaml (a plain `key: value` line), undefined when unset. */
export function remoteBuildOf(azureYaml: string): boolean | undefined {
  const m = /^\s+remoteBuild:\s*(true|false)\s*(?:#.*)?$/m.exec(azureYaml);
  return m ? m[1] === 'true' : undefined;
}
