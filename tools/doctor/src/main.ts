#!/usr/bin/env node
// The access doctor: `npm run doctor [-- --check-access] [--output json|table] [--granted-at <ISO time>]` with a host's
// environment loaded. Exit codes: 0 all is well, 1 a probe failed or a data action access.json grants is missing,
// 2 the doctor could not run (the message says why and what to do). With JSON output, stdout holds only JSON.
import { runDoctor } from './access-doctor.js';
import { doctorHelp, doctorUsage, isDoctorError, readDoctorOptions, wantsJson } from './doctor-options.js';
import { formatReport } from './report-format.js';

const args = process.argv.slice(2);
const json = wantsJson(args);

if (args.includes('--help') || args.includes('-h')) {
  // Before the environment is read: help is for someone who has not loaded a host's environment yet, too.
  process.stdout.write(`${doctorUsage}\n${doctorHelp}\n`);
  process.exit(0);
}

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
