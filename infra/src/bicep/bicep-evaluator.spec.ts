import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isInfraCheckError } from '../errors.js';
import { DeployTimeValue, evaluateDeployment } from './bicep-evaluator.js';

describe(evaluateDeployment.name, () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'bicep-eval-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string): string => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const failure = (run: () => unknown): { code: string; message: string } => {
    try {
      run();
    } catch (error) {
      if (isInfraCheckError(error)) return { code: error.code, message: error.message };
      throw error;
    }
    throw new Error('expected an InfraCheckError');
  };

  it('expands loops over filtered JSON, with safe access and case-insensitive property names', () => {
    write('items.json', JSON.stringify({ Items: [{ Name: 'a', Size: 1 }, { Name: 'b' }, { Name: 'c', Size: 3 }] }));
    const main = write(
      'main.bicep',
      [
        "var data = loadJsonContent('items.json')",
        'var sized = filter(data.items, item => contains(item, \'Size\'))',
        "resource parent 'Microsoft.ServiceBus/namespaces@2024-01-01' = {",
        "  name: 'ns'",
        '}',
        "resource children 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = [for (item, i) in data.Items: {",
        '  parent: parent',
        '  name: item.name',
        '  properties: { maxDeliveryCount: item.?Size ?? 0, position: i }',
        '}]',
        'output sizedNames array = map(sized, item => item.Name)',
      ].join('\n'),
    );
    const deployment = evaluateDeployment(main);
    const queues = deployment.resources.filter((r) => r.type.endsWith('/queues'));
    expect(queues.map((q) => [q.name, q.body['properties']])).toEqual([
      ['ns/a', { maxDeliveryCount: 1, position: 0 }],
      ['ns/b', { maxDeliveryCount: 0, position: 1 }],
      ['ns/c', { maxDeliveryCount: 3, position: 2 }],
    ]);
    expect(queues[1]!.id).toMatch(/\/providers\/Microsoft\.ServiceBus\/namespaces\/ns\/queues\/b$/);
    expect(deployment.outputs['sizedNames']).toEqual(['a', 'c']);
  });

  it('passes module parameters and keeps runtime properties as deploy-time values that know their resource', () => {
    write('child.bicep', "param prefix string\nresource id 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {\n  name: '${prefix}-id'\n}\noutput principalId string = id.properties.principalId\n");
    const main = write('main.bicep', "module child 'child.bicep' = {\n  name: 'child'\n  params: { prefix: 'x' }\n}\noutput principal string = child.outputs.principalId\n");
    const principal = evaluateDeployment(main).outputs['principal'];
    expect(principal).toBeInstanceOf(DeployTimeValue);
    expect((principal as DeployTimeValue).origin?.resource.name).toBe('x-id');
    expect((principal as DeployTimeValue).origin?.path).toEqual(['properties', 'principalId']);
  });

  it('refuses a missing module parameter, naming the module', () => {
    write('child.bicep', 'param prefix string\n');
    const main = write('main.bicep', "module child 'child.bicep' = {\n  name: 'child'\n}\n");
    expect(failure(() => evaluateDeployment(main))).toEqual({ code: 'bicep-evaluation', message: `${main}:1:1: module child.bicep needs parameter "prefix"` });
  });

  it('refuses a property that does not exist (ARM would fail the deployment), at file:line:column', () => {
    const main = write('main.bicep', "var config = { name: 'a' }\noutput size int = config.size\n");
    expect(failure(() => evaluateDeployment(main))).toEqual({ code: 'bicep-evaluation', message: `${main}:2:26: the object has no property "size" (it has: name)` });
  });

  it('reports a syntax error at file:line:column', () => {
    const main = write('main.bicep', "var a = {\n  name 'x'\n}\n");
    expect(failure(() => evaluateDeployment(main))).toEqual({ code: 'bicep-syntax', message: `${main}:2:8: expected ":", found "x"` });
  });

  it('refuses a function outside the subset it evaluates, naming the place and where to extend it', () => {
    const main = write('main.bicep', "output x string = toUpper('a')\n");
    expect(failure(() => evaluateDeployment(main))).toEqual({
      code: 'bicep-evaluation',
      message: `${main}:1:19: function "toUpper" is outside the subset the consistency checks evaluate; extend infra/src/bicep/bicep-evaluator.ts`,
    });
  });

  it('refuses an operator outside the subset as a syntax error, not a wrong value', () => {
    const main = write('main.bicep', 'output x int = 6 * 7\n');
    expect(failure(() => evaluateDeployment(main))).toEqual({ code: 'bicep-syntax', message: `${main}:1:18: unexpected character "*"` });
  });

  it('refuses an unknown name', () => {
    const main = write('main.bicep', 'output x string = missing\n');
    expect(failure(() => evaluateDeployment(main))).toEqual({ code: 'bicep-evaluation', message: `${main}:1:19: unknown name "missing"` });
  });
});
