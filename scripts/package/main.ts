/**
 * `npm run package`: writes the zip that `azd deploy` and `func azure functionapp publish` upload for this app
 * (the project directory with `.funcignore` applied, see ./funcignore.ts) to dist/package.zip and prints its
 * size and file count. It refuses a `.funcignore` that the two tools read differently, and the combination
 * of `remoteBuild` (azure.yaml) and `.funcignore` that azd refuses.
 *
 * `--build` also rebuilds the package as the platform does (./platform-build.ts) in a temporary folder and prints
 * node_modules' size before and after `npm run build:azure`; `--docs FILE` then writes these figures into FILE's
 * block between `<!-- package-figures -->` and `<!-- /package-figures -->` (docs/deploy.md), so the figures the
 * docs quote come from a build, not from a hand.
 *
 *   npm run package [-- --out FILE] [--root DIR] [--list] [--build [--docs FILE]]
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { azdRemoteBuildError, packageFiles, remoteBuildOf } from './funcignore.js';
import { devDependencyCheck, formatMiB, platformBuild, run, type Footprint } from './platform-build.js';
import { zip } from './zip.js';

const MAX_LISTED = 20;

const FIGURES_START = '<!-- package-figures -->';
const FIGURES_END = '<!-- /package-figures -->';

const thousands = (n: number): string => n.toLocaleString('en-US');
const modulesLine = (m: Footprint): string =>
  `${m.packages} packages, ${thousands(m.bytes)} bytes (${formatMiB(m.bytes)}) in ${thousands(m.files)} files`;

/** The figures block of the docs: a table of what this build measured. */
export function figuresBlock(f: {
  files: number;
  bytes: number;
  unpacked: number;
  installed: Footprint;
  pruned: Footprint;
  node: string;
  npm: string;
}): string {
  return [
    FIGURES_START,
    '| Measured by `npm run package -- --build` | |',
    '| --- | --- |',
    `| \`dist/package.zip\` | ${thousands(f.files)} files, ${thousands(f.bytes)} bytes (${thousands(f.unpacked)} bytes unpacked) |`,
    `| \`node_modules\` after \`npm install\` and \`npm run build\` | ${modulesLine(f.installed)} |`,
    `| \`node_modules\` after \`npm run build:azure\` (what runs) | ${modulesLine(f.pruned)} |`,
    `| Built with | Node.js ${f.node}, npm ${f.npm} |`,
    FIGURES_END,
  ].join('\n');
}

/** Replaces the figures block of a docs file; throws when the file has none. */
export function writeFigures(file: string, block: string): void {
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf(FIGURES_START);
  const end = text.indexOf(FIGURES_END);
  if (start < 0 || end < start) throw new Error(`${file} has no ${FIGURES_START} … ${FIGURES_END} block`);
  writeFileSync(file, text.slice(0, start) + block + text.slice(end + FIGURES_END.length));
}

/** Copies the package's files into a temporary folder and builds them there as the platform does. */
async function buildAsPlatform(
  root: string,
  files: readonly string[],
): Promise<{ installed: Footprint; pruned: Footprint } | undefined> {
  const dir = mkdtempSync(join(tmpdir(), 'oci-import-platform-build-'));
  try {
    for (const name of files) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      copyFileSync(join(root, name), join(dir, name));
    }
    const steps = await platformBuild(dir);
    for (const s of steps)
      process.stdout.write(`package: platform build: ${s.step}: exit ${s.code} in ${s.seconds.toFixed(1)} s\n`);
    const failed = steps.find((s) => s.code !== 0);
    if (failed) {
      process.stderr.write(`package: ${failed.step} failed:\n${failed.output.slice(-4000)}\n`);
      return undefined;
    }
    const { devLeft, prodMissing } = devDependencyCheck(dir);
    if (devLeft.length > 0 || prodMissing.length > 0) {
      process.stderr.write(
        `package: after the platform build, development packages left: ${devLeft.join(', ') || 'none'}; production packages missing: ${prodMissing.join(', ') || 'none'}\n`,
      );
      return undefined;
    }
    const installed = steps.find((s) => s.step === 'npm run build')?.modules ?? steps[0]!.modules!;
    const pruned = steps.at(-1)!.modules!;
    process.stdout.write(`package: node_modules after npm install and npm run build: ${modulesLine(installed)}\n`);
    process.stdout.write(
      `package: node_modules after npm run build:azure (what runs): ${modulesLine(pruned)}; no development package\n`,
    );
    return { installed, pruned };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The files to package, or undefined (the reason written to stderr) when azd would refuse to deploy, when azd
 * and Core Tools would package different files, or when nothing is left.
 */
function filesToPackage(
  root: string,
  funcignore: string | undefined,
  remoteBuild: boolean | undefined,
): readonly string[] | undefined {
  const refused = azdRemoteBuildError(funcignore, remoteBuild);
  if (refused) {
    process.stderr.write(
      `package: azd would refuse to deploy: ${refused} (azure.yaml remoteBuild: ${String(remoteBuild)})\n`,
    );
    return undefined;
  }
  const list = packageFiles(root, funcignore, remoteBuild);
  if (list.onlyAzd.length > 0 || list.onlyCoreTools.length > 0) {
    const show = (files: readonly string[]) =>
      files
        .slice(0, MAX_LISTED)
        .map((f) => `  ${f}\n`)
        .join('') + (files.length > MAX_LISTED ? `  … and ${files.length - MAX_LISTED} more\n` : '');
    process.stderr.write(
      'package: azd and Core Tools read .funcignore differently here, so `azd deploy` and ' +
        '`func azure functionapp publish` would upload different packages. Use patterns both read alike ' +
        '(a name or path anchored with a leading `/`, no `*` across directories).\n' +
        (list.onlyAzd.length ? `only azd would package:\n${show(list.onlyAzd)}` : '') +
        (list.onlyCoreTools.length ? `only Core Tools would package:\n${show(list.onlyCoreTools)}` : ''),
    );
    return undefined;
  }
  if (list.files.length === 0) {
    process.stderr.write('package: .funcignore leaves no file to package\n');
    return undefined;
  }
  return list.files;
}

/** Zips `files` (paths relative to `root`, with their modes and times) into `out`. */
function writeZip(root: string, files: readonly string[], out: string): { bytes: number; unpacked: number } {
  let unpacked = 0;
  const archive = zip(
    files.map((name) => {
      const path = join(root, name);
      const info = statSync(path);
      const data = readFileSync(path);
      unpacked += data.length;
      return { name, data, mode: info.mode, mtime: info.mtime };
    }),
  );
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, archive);
  return { bytes: archive.length, unpacked };
}

async function main(): Promise<number> {
  const { values: args } = parseArgs({
    options: {
      out: { type: 'string' },
      root: { type: 'string' },
      list: { type: 'boolean' },
      build: { type: 'boolean' },
      docs: { type: 'string' },
    },
    strict: true,
  });
  const root = resolve(args.root ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..'));
  const out = resolve(args.out ?? join(root, 'dist', 'package.zip'));
  const read = (name: string) => (existsSync(join(root, name)) ? readFileSync(join(root, name), 'utf8') : undefined);
  const funcignore = read('.funcignore');
  const remoteBuild = remoteBuildOf(read('azure.yaml') ?? '');
  const files = filesToPackage(root, funcignore, remoteBuild);
  if (!files) return 1;
  const { bytes, unpacked } = writeZip(root, files, out);

  if (args.list) for (const f of files) process.stdout.write(`${f}\n`);
  const build =
    remoteBuild === false
      ? 'remote build off: the package runs as it is'
      : 'remote build on: the platform runs npm install, npm run build, then npm run build:azure';
  const shown = relative(process.cwd(), out) || out;
  process.stdout.write(
    `package: ${shown}: ${files.length} files, ${bytes} bytes ` + `(${unpacked} bytes unpacked); ${build}\n`,
  );
  if (!args.build) {
    if (args.docs) process.stderr.write('package: --docs needs --build (the figures come from the build)\n');
    return args.docs ? 1 : 0;
  }
  const built = await buildAsPlatform(root, files);
  if (!built) return 1;
  if (args.docs) {
    const npmVersion = (await run('npm', ['--version'], root)).output.trim();
    writeFigures(
      resolve(args.docs),
      figuresBlock({
        files: files.length,
        bytes,
        unpacked,
        installed: built.installed,
        pruned: built.pruned,
        node: process.version,
        npm: npmVersion,
      }),
    );
    process.stdout.write(`package: figures written to ${args.docs}\n`);
  }
  return 0;
}

process.exitCode = await main();
