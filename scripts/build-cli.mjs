// Bundles the CLI into one file (dist/cli/oci-import.cjs): loading ~80 modules of lib/ and node_modules one by
// one costs the CLI most of its start-up; one minified script, compiled with V8's code cache by
// bin/oci-import.js, costs a fraction. @azure/identity stays outside (loaded on the first managed-identity
// token only). Run by `npm run build`, after tsc.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

const started = Date.now();
// V8 checks a code cache against the source's length, not its content: a cache of the previous bundle must not
// meet a new bundle of the same length.
const stale = existsSync('dist/cli') ? readdirSync('dist/cli').filter((name) => name.endsWith('.cache')) : [];
for (const name of stale) rmSync(`dist/cli/${name}`);
const result = await build({
  entryPoints: ['lib/cli/main.ts'],
  outfile: 'dist/cli/oci-import.cjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: true,
  sourcemap: 'linked',
  external: ['@azure/identity'],
  logLevel: 'warning',
  metafile: true,
});
const bytes = Object.values(result.metafile.outputs).find((o) => o.entryPoint)?.bytes ?? 0;
process.stderr.write(`build-cli: dist/cli/oci-import.cjs, ${(bytes / 1024).toFixed(0)} KiB in ${Date.now() - started} ms\n`);
