#!/usr/bin/env node
// The installed command runs the compiled CLI (built by `npm ci` / `npm run build` through `prepare`).
import { main } from '../dist/lib/cli/main.js';

process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
