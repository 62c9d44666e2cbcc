#!/usr/bin/env node
import { relative } from 'node:path';
import { repoRoot, runApiReports, updateCommand } from './api-reports.js';

// `keyless-api-reports [--update]`: checks (with --update: rewrites) libs/*/review/*.api.md.
const update = process.argv.includes('--update');
try {
  let failed = false;
  for (const result of runApiReports({ update })) {
    const report = relative(repoRoot, result.reportPath);
    for (const problem of result.problems) process.stderr.write(`${result.entryPoint.specifier}: ${problem}\n`);
    if (result.problems.length) failed = true;
    if (!result.changed) process.stdout.write(`${report}: unchanged\n`);
    else if (update) process.stdout.write(`${report}: updated\n`);
    else {
      failed = true;
      process.stderr.write(`${report}: the public API of ${result.entryPoint.specifier} changed (now: ${relative(repoRoot, result.currentReportPath)}); run \`${updateCommand}\` and commit the report\n`);
    }
  }
  process.exitCode = failed ? 1 : 0;
} catch (error) {
  process.stderr.write(`api reports: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
