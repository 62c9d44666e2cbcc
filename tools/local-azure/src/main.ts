#!/usr/bin/env node
// The `local-azure` command. `start` first sets up the process for memory (runtime/memory-tuning.ts: it may
// re-execute itself in place, so this comes before the CLI and everything it loads); then cli/commands.ts runs.
import { commandOf } from './cli/arguments.js';
import { tuneMemory } from './runtime/memory-tuning.js';

if (commandOf(process.argv.slice(2)) === 'start') tuneMemory();
await import('./cli/commands.js');
