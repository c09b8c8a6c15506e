// A node:test reporter for conformance/run: appends one line per finished test, "pass NAME",
// "fail NAME" or "skip NAME", to the file named by CONFORMANCE_RESULTS (as conftest.py does
// for pytest). Every node suite (a folder with package.json) runs it with
// `--test-reporter=../../node-reporter.mjs`. NAME is the test file's path under conformance/,
// "::", and the test's name.
// A file that fails outside any test (a syntax error, a missing package) reports as failed too.
// It prints nothing; the spec reporter beside it shows the run.

import { appendFileSync } from 'node:fs';
import { relative } from 'node:path';

export default async function* conformanceResults(source) {
  const resultsPath = process.env.CONFORMANCE_RESULTS;
  const conformanceDir = process.env.CONFORMANCE_DIR ?? process.cwd();
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { name, file, skip, todo } = event.data;
    let outcome = 'pass';
    if (event.type === 'test:fail') outcome = 'fail';
    else if (skip || todo) outcome = 'skip';
    const where = file ? relative(conformanceDir, file) : 'unknown file';
    const line = name === file ? `${outcome} ${where}` : `${outcome} ${where}::${name}`;
    if (resultsPath) appendFileSync(resultsPath, `${line}\n`);
  }
  yield '';
}
