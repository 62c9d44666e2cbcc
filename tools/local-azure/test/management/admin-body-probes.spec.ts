import { startTestAzure, type TestAzure } from '../../src/testing/index.js';

// Probes of the admin routes' request bodies over real HTTPS with the operator's own token: JSON that parses but is
// not the object a route reads must get ARM's 400, not a 500 from the route reading a field of it.
describe('The admin routes, given a JSON body that is not an object', () => {
  let test: TestAzure;
  const console: string[] = [];

  beforeAll(async () => {
    test = await startTestAzure({ log: (line) => console.push(line) });
  });
  afterAll(() => test.stop());

  const send = async (method: string, path: string, body: string): Promise<{ status: number; body: unknown }> => {
    const answer = await fetch(new URL(path, test.azure.endpoints.management), {
      method,
      headers: { authorization: `Bearer ${await test.operatorToken()}`, 'content-type': 'application/json' },
      body,
    });
    return { status: answer.status, body: await answer.json() };
  };

  describe.each([
    ['POST', '/roleAssignments'],
    ['PUT', '/faults/vision'],
  ])('%s %s', (method, path) => {
    it.each(['null', '[]', '"reader"', '42'])('refuses %s with 400 InvalidRequestContent, changes nothing and logs no failure', async (body) => {
      const assignments = test.azure.roleAssignments.all().length;
      const failures = console.filter((line) => line.includes('Error')).length;
      expect(await send(method, path, body)).toEqual({
        status: 400,
        body: { error: { code: 'InvalidRequestContent', message: 'The request content was invalid: it must be a JSON object.' } },
      });
      expect(test.azure.roleAssignments.all()).toHaveLength(assignments);
      expect(test.azure.faults.get('vision').mode).toBe('none');
      expect(console.filter((line) => line.includes('Error'))).toHaveLength(failures);
    });
  });

  it('still takes the object each expects', async () => {
    expect((await send('PUT', '/faults/vision', JSON.stringify({ fault: 'none' }))).status).toBe(200);
    const created = await send('POST', '/roleAssignments', JSON.stringify({ assignee: 'reader', role: 'Reader', scope: 'vision' }));
    expect(created.status).toBe(201);
  });
});
