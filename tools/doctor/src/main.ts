#!/usr/bin/env node
// The access doctor: `npm run doctor [-- --json] [--granted-at <ISO time>]` with a host's environment loaded.
// Exit codes: 0 every probe ok, 1 a probe failed, 2 the doctor could not run (the message says why and what to do).
import { runDoctor } from './access-doctor.js';
import { isDoctorError, readDoctorOptions } from './doctor-options.js';
import { formatReport } from './report-format.js';

const args = process.argv.slice(2);
const json = args.includes('--json');

try {
  const report = await runDoctor(readDoctorOptions(process.env, args));
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  process.exitCode = report.ok ? 0 : 1;
} catch (error) {
  const message = error instanceof Error ? error.message : String(error);
  if (json) process.stdout.write(`${JSON.stringify({ error: { code: isDoctorError(error) ? error.code : 'Unexpected', message } }, null, 2)}\n`);
  else process.stderr.write(`access doctor: ${message}\n`);
  process.exitCode = 2;
}
