import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../config/local-azure-config.js';
import { entryScope, loadAccessFile } from './access-file.js';

describe('loadAccessFile', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'access-file-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const write = (content: unknown): string => {
    const path = join(dir, `${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  };
  const entry = { role: 'Azure Service Bus Data Sender', roleDefinitionId: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39', resource: 'serviceBus', queue: 'q', purpose: 'p' };

  it('reads a valid file and resolves each role', () => {
    const { identity, entries } = loadAccessFile(write({ identity: 'id-x', assignments: [entry] }));
    expect(identity).toBe('id-x');
    expect(entries[0]!.definition.name).toBe('Azure Service Bus Data Sender');
  });

  it.each([
    ['not JSON', '{', /not valid JSON/],
    ['an unknown role', { identity: 'i', assignments: [{ ...entry, role: 'Storage Blob Data Reader' }] }, /assignments\[0\]\.role: "Storage Blob Data Reader" is not a built-in role/],
    ['a control-plane role', { identity: 'i', assignments: [{ ...entry, role: 'Owner', roleDefinitionId: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635' }] }, /assignments\[0\]\.role: "Owner" grants no data action/],
    ['a wrong role id', { identity: 'i', assignments: [{ ...entry, roleDefinitionId: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0' }] }, /assignments\[0\]\.roleDefinitionId/],
    ['an unknown resource', { identity: 'i', assignments: [{ ...entry, resource: 'sql' }] }, /assignments\.0\.resource/],
    ['a queue on a non-Service-Bus resource', { identity: 'i', assignments: [{ ...entry, role: 'Cognitive Services User', roleDefinitionId: 'a97b65f3-24c7-4388-baec-2e87135dc908', resource: 'vision' }] }, /assignments\[0\]: queue\/topic\/subscription only apply/],
    ['a subscription without its topic', { identity: 'i', assignments: [{ ...entry, queue: undefined, subscription: 's' }] }, /assignments\[0\]\.subscription: needs the topic/],
    ['a missing purpose', { identity: 'i', assignments: [{ ...entry, purpose: undefined }] }, /assignments\.0\.purpose/],
  ])('refuses %s, naming the file and the field', (_case, content, message) => {
    const path = write(content);
    expect(() => loadAccessFile(path)).toThrow(ConfigError);
    expect(() => loadAccessFile(path)).toThrow(message);
    expect(() => loadAccessFile(path)).toThrow(path);
  });
});

describe('entryScope', () => {
  it.each([
    [{}, '/r'],
    [{ queue: 'q' }, '/r/queues/q'],
    [{ topic: 't' }, '/r/topics/t'],
    [{ topic: 't', subscription: 's' }, '/r/topics/t/subscriptions/s'],
  ])('%j → %s', (entry, scope) => {
    expect(entryScope(entry, '/r')).toBe(scope);
  });
});
