#!/usr/bin/env node
// `node tools/packager/dist/main.js <service> [--out <folder>]`, usually through `npx nx run <service>:package`
// (azd's prepackage hook). Prints what went in; exit code 2 with the reason and the fix when it cannot pack.
import { fileURLToPath } from 'node:url';
import { PackageError, packageService } from './package-service.js';

const args = process.argv.slice(2);
const outAt = args.indexOf('--out');
const service = args.find((arg, i) => !arg.startsWith('--') && (outAt < 0 || i !== outAt + 1));
const root = fileURLToPath(new URL('../../..', import.meta.url));

if (!service || (outAt >= 0 && !args[outAt + 1])) {
  process.stderr.write('usage: keyless-package <service> [--out <folder>]   (service: gateway, recommendation or vision)\n');
  process.exitCode = 2;
} else {
  try {
    const packed = packageService({ root, service, ...(outAt >= 0 ? { outDir: args[outAt + 1]! } : {}) });
    process.stdout.write(
      `Packed ${service} into ${packed.outDir}: ${Object.keys(packed.dependencies).length} dependencies (${packed.packageCount} npm packages with theirs), ` +
        `${packed.workspaceLibraries.length} workspace libraries (${packed.workspaceLibraries.join(', ')}), ${(packed.bytes / 1_048_576).toFixed(1)} MB. Run it with: node dist/main.js\n`,
    );
  } catch (error) {
    if (!(error instanceof PackageError)) throw error;
    process.stderr.write(`packager: ${error.message}\n`);
    process.exitCode = 2;
  }
}
