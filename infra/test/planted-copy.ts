import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkInfrastructure, type InfraProblem } from '../src/index.js';
import { rbac } from './rbac-knowledge.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** A temporary copy of the deployment files (infra/*.bicep, modules, the JSON files, the azd hooks, azure.yaml) to break. */
export class PlantedCopy {
  readonly root = mkdtempSync(join(tmpdir(), 'infra-planted-'));

  constructor() {
    for (const path of ['infra/main.bicep', 'infra/main.parameters.json', 'infra/modules', 'infra/access.json', 'infra/servicebus-topology.json', 'infra/gateway-app-roles.json', 'infra/scripts', 'azure.yaml']) {
      cpSync(join(repoRoot, path), join(this.root, path), { recursive: true });
    }
  }

  /** Replaces `search` (which must occur) in a file of the copy. */
  replace(path: string, search: string, replacement: string): this {
    const file = join(this.root, path);
    const text = readFileSync(file, 'utf8');
    if (!text.includes(search)) throw new Error(`${path} does not contain ${JSON.stringify(search)}`);
    writeFileSync(file, text.replace(search, replacement));
    return this;
  }

  append(path: string, text: string): this {
    const file = join(this.root, path);
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n${text}\n`);
    return this;
  }

  /** Edits a JSON file of the copy. */
  editJson<T>(path: string, edit: (json: T) => void): this {
    const file = join(this.root, path);
    const json = JSON.parse(readFileSync(file, 'utf8')) as T;
    edit(json);
    writeFileSync(file, JSON.stringify(json, null, 2));
    return this;
  }

  check(): InfraProblem[] {
    return checkInfrastructure({ root: this.root }, rbac);
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}
