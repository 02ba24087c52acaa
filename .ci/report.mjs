// The end of a CI run: reads the JSON reports of its vitest runs, names every test that did not run (skipped or
// todo), counts the harness's self-tests apart from the product's tests, and prints the plain closing line CI
// reads, "N passed, N failed, N skipped", over all of them. Exits 1 when a test was skipped, or a report is
// missing: in CI every tool is installed and every test must run.
import { readFileSync } from 'node:fs';

/** Tests of the test harness itself (fake registry, real-registry harness, the benchmark's far-away proxy). */
const HARNESS = ['test/unit/fake-registry.test.ts', 'test/unit/far-proxy.test.ts', 'test/integration/harness.test.ts'];

const totals = { passed: 0, failed: 0, skipped: 0 };
/** Every failed test by name with the first lines of its message, printed last so the tail of a CI log shows them. */
const failures = [];
const flaky = [];
const harness = { passed: 0, failed: 0 };
let missing = 0;
for (const file of process.argv.slice(2)) {
  let report;
  try {
    report = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    console.log(`report ${file} is missing or unreadable (${err.message}): that run did not finish`);
    missing++;
    continue;
  }
  totals.passed += report.numPassedTests;
  totals.failed += report.numFailedTests;
  totals.skipped += report.numPendingTests + report.numTodoTests;
  for (const suite of report.testResults ?? []) {
    const path = suite.name.replace(`${process.cwd()}/`, '');
    for (const test of suite.assertionResults ?? []) {
      if (['skipped', 'pending', 'todo'].includes(test.status)) console.log(`skipped: ${path} > ${test.fullName}`);
      if (test.status === 'failed') failures.push(failureLines('failed', path, test));
      // passed, with the errors of an earlier try: it passed only when run again (OCI_IMPORT_TEST_RETRY)
      if (test.status === 'passed' && test.failureMessages?.length)
        flaky.push(failureLines('passed on a second try', path, test));
      if (HARNESS.includes(path) && (test.status === 'passed' || test.status === 'failed')) harness[test.status]++;
    }
  }
}
for (const lines of [...flaky, ...failures]) console.log(lines);
console.log(`harness self-tests (${HARNESS.join(', ')}): ${harness.passed} passed, ${harness.failed} failed`);
console.log(`product tests: ${totals.passed - harness.passed} passed, ${totals.failed - harness.failed} failed`);
if (flaky.length > 0)
  console.log(`${flaky.length} test(s) passed only on a second try (named above): flaky, to be made robust`);
console.log(`${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
if (totals.skipped > 0)
  console.log(
    'CI fails on a skipped test: every tool the tests need is installed here, so a skip hides a test that did not run',
  );
process.exit(totals.skipped > 0 || missing > 0 ? 1 : 0);

/** `<what>: <file> > <test>` and the first lines of its first failure message (no colours, at most 6 lines). */
function failureLines(what, path, test) {
  const message = String(test.failureMessages?.[0] ?? '')
    .split(String.fromCharCode(27)) // colour codes: ESC [ … m
    .map((part, i) => (i === 0 ? part : part.replace(/^\[[0-9;]*m/, '')))
    .join('')
    .split('\n')
    .filter((line) => !line.includes('node_modules'))
    .slice(0, 6)
    .map((line) => `    ${line}`)
    .join('\n');
  return `${what}: ${path} > ${test.fullName}\n${message}`;
}
