#!/usr/bin/env node
/**
 * `npm run infra:build`: compiles infra/main.bicep with the real Bicep compiler into dist/infra/main.json
 * and fails on any compiler or linter diagnostic, warnings included.
 *
 * Where the compiler comes from, first match wins:
 *   1. BICEP_BIN=/path/to/bicep (an explicit binary);
 *   2. `bicep` on PATH;
 *   3. `az bicep` (the Azure CLI's managed copy);
 *   4. `dotnet`: the NuGet package Azure.Bicep.CommandLine.<rid> (a self-contained binary under tools/),
 *      restored once through a throwaway project's <PackageDownload> into .bicep/ (gitignored), so later
 *      builds reuse it without asking NuGet again.
 *
 * Exit codes: 0 compiled clean · 1 diagnostics or a failed compile · 3 no compiler can be had here
 * (test/infra tells "cannot build" apart from "built badly" by this code).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The version this project is linted against; newer compilers add linter rules, so move it on purpose. */
const BICEP_NUGET_VERSION = '0.49.2';
const EXIT_NO_COMPILER = 3;

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const input = join(root, 'infra', 'main.bicep');
const output = join(root, 'dist', 'infra', 'main.json');
const cacheDir = join(root, '.bicep');

const log = (line) => process.stdout.write(`${line}\n`);

/** Runs a command; never throws (a missing program comes back as `error`). */
function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000, ...options });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

function works(cmd, args) {
  const r = run(cmd, args, { timeout: 60_000, env: { ...process.env, AZURE_BICEP_CHECK_VERSION: 'False' } });
  return !r.error && r.status === 0 ? (r.stdout + r.stderr).trim() : undefined;
}

/** NuGet runtime identifier of this machine, as the Bicep CLI packages are named. */
function runtimeId() {
  const os = { linux: 'linux', darwin: 'osx', win32: 'win' }[process.platform];
  const arch = { x64: 'x64', arm64: 'arm64' }[process.arch];
  return os && arch ? `${os}-${arch}` : undefined;
}

function fromNuGet() {
  const rid = runtimeId();
  if (!rid || !works('dotnet', ['--version'])) return undefined;
  const pkg = `Azure.Bicep.CommandLine.${rid}`;
  const exe = join(
    cacheDir,
    'packages',
    pkg.toLowerCase(),
    BICEP_NUGET_VERSION,
    'tools',
    process.platform === 'win32' ? 'bicep.exe' : 'bicep',
  );
  if (!existsSync(exe)) {
    const project = join(cacheDir, 'restore');
    mkdirSync(project, { recursive: true });
    const sdkMajor = works('dotnet', ['--version'])?.split('.')[0] ?? '8';
    // A project that builds nothing: <PackageDownload> fetches the package as is (no dependency graph, no
    // framework check), which is what a tool package needs. Directory.Build.* of parent folders are ignored.
    writeFileSync(
      join(project, 'bicep-restore.csproj'),
      `<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <TargetFramework>net${sdkMajor}.0</TargetFramework>
    <ImportDirectoryBuildProps>false</ImportDirectoryBuildProps>
    <ImportDirectoryBuildTargets>false</ImportDirectoryBuildTargets>
    <ImportDirectoryPackagesProps>false</ImportDirectoryPackagesProps>
  </PropertyGroup>
  <ItemGroup>
    <PackageDownload Include="${pkg}" Version="[${BICEP_NUGET_VERSION}]" />
  </ItemGroup>
</Project>
`,
    );
    log(`infra:build: restoring ${pkg} ${BICEP_NUGET_VERSION} from NuGet into ${relative(root, cacheDir)}/ …`);
    const r = run(
      'dotnet',
      ['restore', join(project, 'bicep-restore.csproj'), '--packages', join(cacheDir, 'packages'), '--nologo'],
      {
        env: {
          ...process.env,
          DOTNET_CLI_TELEMETRY_OPTOUT: '1',
          DOTNET_NOLOGO: '1',
          DOTNET_SKIP_FIRST_TIME_EXPERIENCE: '1',
        },
      },
    );
    if (r.status !== 0 || !existsSync(exe)) {
      log(`infra:build: dotnet restore of ${pkg} ${BICEP_NUGET_VERSION} failed:`);
      log((r.stdout + r.stderr).trim() || String(r.error));
      return undefined;
    }
    // The archive (~110 MB) is not needed once tools/ is extracted; only the binary is used from here on.
    rmSync(join(dirname(dirname(exe)), `${pkg.toLowerCase()}.${BICEP_NUGET_VERSION}.nupkg`), { force: true });
  }
  // NuGet keeps the archive's mode bits only sometimes; the binary must be executable.
  if (process.platform !== 'win32' && (statSync(exe).mode & 0o111) === 0) chmodSync(exe, 0o755);
  return { kind: `NuGet ${pkg} ${BICEP_NUGET_VERSION}`, cmd: exe, prefix: [] };
}

/** The first compiler that answers `--version`, with the argv prefix that reaches its `build`. */
function findCompiler() {
  const explicit = process.env.BICEP_BIN;
  if (explicit) return works(explicit, ['--version']) ? { kind: 'BICEP_BIN', cmd: explicit, prefix: [] } : undefined;
  if (works('bicep', ['--version'])) return { kind: 'bicep on PATH', cmd: 'bicep', prefix: [] };
  // `az bicep version` exits 0 when az has a Bicep it can run (its own copy, or one on PATH).
  if (works('az', ['bicep', 'version', '--only-show-errors']))
    return { kind: 'az bicep', cmd: 'az', prefix: ['bicep'] };
  return fromNuGet();
}

function main() {
  const started = Date.now();
  const compiler = findCompiler();
  if (!compiler) {
    log(
      'infra:build: no Bicep compiler: none of BICEP_BIN, `bicep`, `az bicep` or `dotnet` (for NuGet ' +
        `Azure.Bicep.CommandLine.<rid> ${BICEP_NUGET_VERSION}) is available on this machine.`,
    );
    return EXIT_NO_COMPILER;
  }
  const az = compiler.prefix.length > 0;
  const version =
    works(compiler.cmd, az ? ['bicep', 'version', '--only-show-errors'] : ['--version']) ?? 'unknown version';
  log(`infra:build: compiler ${compiler.kind}: ${compiler.cmd === 'az' ? 'az bicep' : compiler.cmd}`);
  log(`infra:build: ${version.split('\n')[0]}`);

  mkdirSync(dirname(output), { recursive: true });
  rmSync(output, { force: true });
  // --no-restore: the templates use local modules only, so nothing may be fetched from a registry. (No
  // --only-show-errors for az: it could hide the compiler's warnings, which must fail the build.)
  const args = az
    ? ['bicep', 'build', '--file', input, '--outfile', output, '--no-restore']
    : ['build', input, '--outfile', output, '--no-restore'];
  // AZURE_BICEP_CHECK_VERSION: az would otherwise ask the network for a newer Bicep and warn about it.
  const r = run(compiler.cmd, args, { env: { ...process.env, AZURE_BICEP_CHECK_VERSION: 'False' } });
  const lines = `${r.stdout}\n${r.stderr}`
    .split('\n')
    .map((l) => l.trimEnd())
    .filter(Boolean);
  for (const line of lines) log(line);
  // Bicep prints one line per diagnostic: `file(line,col) : Warning rule-name: message`. Any such line fails
  // the build, so a new linter finding cannot slip in as "just a warning".
  const diagnostics = lines.filter((l) => /\b(warning|error)\b/i.test(l));
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (r.error || r.status !== 0 || diagnostics.length > 0 || !existsSync(output)) {
    // No half-good output: the tests must never read a template that was built with diagnostics.
    rmSync(output, { force: true });
    log(
      `infra:build: FAILED after ${seconds}s (compiler exit ${r.status ?? r.error}, ${diagnostics.length} warning/error line(s))`,
    );
    return 1;
  }
  log(`infra:build: ${relative(root, input)} -> ${relative(root, output)} in ${seconds}s, 0 warnings, 0 errors`);
  return 0;
}

process.exitCode = main();
