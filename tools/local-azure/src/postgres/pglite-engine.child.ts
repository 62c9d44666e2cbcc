// The local PostgreSQL engine: PGlite (PostgreSQL compiled to WebAssembly) with pgvector, in a child process of
// the local Azure, so that a long query never stalls the local Azure's event loop (the Service Bus broker and the
// identity endpoint run there) and a fatal error of the WebAssembly engine ends this process only. The front end
// sends whole protocol messages over the IPC channel; this process answers with the backend's bytes. PGlite has
// one session; the front end decides whose messages run when.
//
// This file is started with `fork()`: it imports packages only, and uses erasable TypeScript only, so Node runs it
// from src/ (tests, type stripping) and from dist/ alike. It reads its settings from KEYLESS_PGLITE_SETTINGS.
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';

/** What the local Azure passes, as JSON in the environment variable KEYLESS_PGLITE_SETTINGS. */
export interface EngineSettings {
  dataDir: string;
  database: string;
  /** Extensions a non-superuser may create (marked trusted, like Azure's `azure.extensions` allow-list). */
  extensions: string[];
}

/** Messages to the engine process. */
export type EngineRequest = { op: 'exec'; id: number; bytes: Uint8Array } | { op: 'heap'; id: number } | { op: 'close'; id: number };

/** Messages from the engine process. */
export type EngineReply =
  | { op: 'ready'; parameters: [string, string][]; settings: [string, string][] }
  | { op: 'result'; id: number; bytes: Uint8Array }
  | { op: 'heap'; id: number; usedBytes: number }
  | { op: 'failed'; id: number; message: string }
  | { op: 'closed'; id: number }
  | { op: 'crashed'; message: string };

const settings = JSON.parse(process.env.KEYLESS_PGLITE_SETTINGS ?? '{}') as EngineSettings;
const extensionModules = { vector };

function post(reply: EngineReply, then?: () => void): void {
  process.send!(reply, undefined, {}, () => then?.());
}

function open(dataDir: string, database?: string): Promise<PGlite> {
  return PGlite.create({ dataDir, ...(database ? { database } : {}), extensions: extensionModules });
}

/**
 * Opens the served database. On first use the data folder is made in a sibling folder and renamed into place
 * when complete, so a start that is interrupted leaves nothing half-made behind. Making it (initdb, then the
 * database: PGlite opens one database for its life and cannot start on one that does not exist, so it is created
 * from a session on `postgres`) takes seconds; a pristine result is kept in the system's temporary folder, per
 * PGlite version and database name, and later first starts (a new home, a test) copy it instead.
 */
async function openServedDatabase(): Promise<PGlite> {
  if (existsSync(join(settings.dataDir, 'PG_VERSION'))) {
    try {
      return await open(settings.dataDir, settings.database);
    } catch {
      // The database is missing (a data folder from an older configuration): create it in place.
      await createDatabase(settings.dataDir);
      return open(settings.dataDir, settings.database);
    }
  }
  const staging = `${settings.dataDir}.initializing`;
  rmSync(staging, { recursive: true, force: true });
  const template = templateDir();
  if (existsSync(join(template, completeMarker))) {
    cpSync(template, staging, { recursive: true });
    rmSync(join(staging, completeMarker), { force: true });
  } else {
    mkdirSync(staging, { recursive: true, mode: 0o700 });
    await createDatabase(staging);
    keepTemplate(staging, template);
  }
  rmSync(settings.dataDir, { recursive: true, force: true });
  renameSync(staging, settings.dataDir);
  return open(settings.dataDir, settings.database);
}

/** Written last into a complete template: a template without it is being made, or was abandoned. */
const completeMarker = '.keyless-template-complete';

function templateDir(): string {
  const packageJson = new URL('../package.json', import.meta.resolve('@electric-sql/pglite'));
  const { version } = JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string };
  return join(tmpdir(), `keyless-pglite-${version}-${settings.database}`);
}

/** Copies a new data folder as the template, atomically; another process making the same one at once wins or loses harmlessly. */
function keepTemplate(dataDir: string, template: string): void {
  const partial = `${template}.${process.pid}`;
  try {
    cpSync(dataDir, partial, { recursive: true });
    writeFileSync(join(partial, completeMarker), '');
    renameSync(partial, template);
  } catch {
    // No cache, or another one won the race: the next first start makes or finds it.
  } finally {
    rmSync(partial, { recursive: true, force: true });
  }
}

async function createDatabase(dataDir: string): Promise<void> {
  const bootstrap = await open(dataDir);
  try {
    const found = await bootstrap.query('SELECT 1 FROM pg_database WHERE datname = $1', [settings.database]);
    if (!found.rows.length) await bootstrap.exec(`CREATE DATABASE "${settings.database.replaceAll('"', '""')}"`);
  } finally {
    await bootstrap.close();
  }
}

/**
 * Marks allow-listed extensions trusted, so that a member of `azure_pg_admin` (not a superuser) can create
 * them, as Azure allows for the extensions in `azure.extensions`. The control files live in PGlite's
 * in-memory file system and are laid out anew at every start.
 */
function trustExtensions(db: PGlite): void {
  const fs = db.Module.FS;
  for (const name of settings.extensions) {
    const file = `${PGlite.paths.PG_ROOT}/share/postgresql/extension/${name}.control`;
    const control = fs.readFile(file, { encoding: 'utf8' }) as string;
    if (!/^\s*trusted\s*=\s*true/m.test(control)) fs.writeFile(file, `${control}\ntrusted = true\n`);
  }
}

/**
 * Runs frontend messages and returns the backend's bytes as they came. Not `execProtocolRaw`: PGlite (0.5) also parses
 * every backend message it returns into the results of its current query, which only `execProtocol` starts afresh,
 * so on an engine that runs nothing but raw messages every row ever returned stayed in memory (a soak at 20 requests/s:
 * +8.8 MB of live heap a minute, which would exhaust the process within hours).
 */
async function execRaw(db: PGlite, message: Uint8Array): Promise<Buffer> {
  const chunks: Buffer[] = [];
  // Each chunk is a view of the WebAssembly memory, valid during the call only: copied.
  await db.execProtocolRawStream(message, { onRawData: (chunk) => void chunks.push(Buffer.from(chunk)) });
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** The ParameterStatus values PostgreSQL reports at start-up (server_version, TimeZone, …). */
async function startupParameters(db: PGlite): Promise<[string, string][]> {
  const body = Buffer.concat([int32(196_608), cstring('user'), cstring('postgres'), cstring('database'), cstring(settings.database), Buffer.from([0])]);
  const bytes = await execRaw(db, Buffer.concat([int32(body.length + 4), body]));
  const parameters: [string, string][] = [];
  for (let offset = 0; offset + 5 <= bytes.length; ) {
    const length = bytes.readInt32BE(offset + 1);
    if (bytes[offset] === 0x53 /* S */) {
      const [name, value] = bytes.subarray(offset + 5, offset + 1 + length).toString('utf8').split('\0');
      parameters.push([name!, value ?? '']);
    }
    offset += 1 + length;
  }
  return parameters;
}

function int32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeInt32BE(value);
  return out;
}

function cstring(value: string): Buffer {
  return Buffer.from(`${value}\0`, 'utf8');
}

/** PGlite ends its WebAssembly program on some fatal errors (`ExitStatus`); the engine is then unusable. */
function isExit(error: unknown): boolean {
  return (error as { name?: string } | null)?.name === 'ExitStatus';
}

async function main(): Promise<void> {
  const db = await openServedDatabase();
  trustExtensions(db);
  const settingContexts = await db.query<{ name: string; context: string }>('SELECT name, context FROM pg_catalog.pg_settings');
  post({ op: 'ready', parameters: await startupParameters(db), settings: settingContexts.rows.map((row) => [row.name, row.context]) });
  process.on('message', (request: EngineRequest) => {
    if (request.op === 'close') {
      void db.close().finally(() => post({ op: 'closed', id: request.id }, () => process.disconnect()));
      return;
    }
    if (request.op === 'heap') return post({ op: 'heap', id: request.id, usedBytes: process.memoryUsage().heapUsed });
    execRaw(db, request.bytes).then(
      (bytes) => post({ op: 'result', id: request.id, bytes }),
      (error: unknown) => {
        if (!isExit(error)) return post({ op: 'failed', id: request.id, message: String((error as Error)?.message ?? error) });
        post({ op: 'crashed', message: `PGlite stopped: ${String((error as Error)?.message ?? error)}` }, () => process.exit(1));
      },
    );
  });
}

// The local Azure is gone (killed, crashed): so is the reason to hold the data folder.
process.on('disconnect', () => process.exit(0));
// Ctrl-C in a terminal signals the whole foreground process group, this process included: the local Azure stops it
// in order (`close`: a checkpoint), or its exit disconnects it, so the signal itself is not a reason to leave.
process.on('SIGINT', () => undefined);

main().catch((error: unknown) => {
  post({ op: 'crashed', message: `PGlite could not start: ${String((error as Error)?.stack ?? error)}` }, () => process.exit(1));
});
