/**
 * `npm run package`: writes the zip that `azd deploy` and `func azure functionapp publish` upload for this app
 * (the project directory with `.funcignore` applied, see ./funcignore.ts) to dist/package.zip and prints its
 * size and file count. It refuses a `.funcignore` that the two tools read differently, and the combination
 * of `remoteBuild` (azure.yaml) and `.funcignore` that azd refuses.
 *
 *   npm run package [-- --out FILE] [--root DIR] [--list]
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { azdRemoteBuildError, packageFiles, remoteBuildOf } from './funcignore.js';
import { zip } from './zip.js';

const MAX_LISTED = 20;

function main(): number {
  const { values: args } = parseArgs({
    options: { out: { type: 'string' }, root: { type: 'string' }, list: { type: 'boolean' } },
    strict: true,
  });
  const root = resolve(args.root ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..'));
  const out = resolve(args.out ?? join(root, 'dist', 'package.zip'));
  const read = (name: string) => (existsSync(join(root, name)) ? readFileSync(join(root, name), 'utf8') : undefined);
  const funcignore = read('.funcignore');
  const remoteBuild = remoteBuildOf(read('azure.yaml') ?? '');

  const refused = azdRemoteBuildError(funcignore, remoteBuild);
  if (refused) {
    process.stderr.write(`package: azd would refuse to deploy: ${refused} (azure.yaml remoteBuild: ${String(remoteBuild)})\n`);
    return 1;
  }
  const list = packageFiles(root, funcignore, remoteBuild);
  if (list.onlyAzd.length > 0 || list.onlyCoreTools.length > 0) {
    const show = (files: readonly string[]) => files.slice(0, MAX_LISTED).map((f) => `  ${f}\n`).join('')
      + (files.length > MAX_LISTED ? `  … and ${files.length - MAX_LISTED} more\n` : '');
    process.stderr.write('package: azd and Core Tools read .funcignore differently here, so `azd deploy` and '
      + '`func azure functionapp publish` would upload different packages. Use patterns both read alike '
      + '(a name or path anchored with a leading `/`, no `*` across directories).\n'
      + (list.onlyAzd.length ? `only azd would package:\n${show(list.onlyAzd)}` : '')
      + (list.onlyCoreTools.length ? `only Core Tools would package:\n${show(list.onlyCoreTools)}` : ''));
    return 1;
  }
  if (list.files.length === 0) {
    process.stderr.write('package: .funcignore leaves no file to package\n');
    return 1;
  }

  let unpacked = 0;
  const archive = zip(list.files.map((name) => {
    const path = join(root, name);
    const info = statSync(path);
    const data = readFileSync(path);
    unpacked += data.length;
    return { name, data, mode: info.mode, mtime: info.mtime };
  }));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, archive);

  if (args.list) for (const f of list.files) process.stdout.write(`${f}\n`);
  const build = remoteBuild === false
    ? 'remote build off: the package runs as it is'
    : 'remote build on: the platform runs npm install, then npm run build';
  const shown = relative(process.cwd(), out) || out;
  process.stdout.write(`package: ${shown}: ${list.files.length} files, ${archive.length} bytes `
    + `(${unpacked} bytes unpacked); ${build}\n`);
  return 0;
}

process.exitCode = main();
