import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Test, type TestingModule } from '@nestjs/testing';
import { findRole, openAiDataPlane, repoRoot } from '@keyless/local-azure';
import { runToEnd, startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { RecordingLogger } from '@keyless/testing';
import { AuthModule, AzureClientFactory, isAccessDeniedError, type AccessDeniedError } from '../../src/index.js';

// What a service prints under `LOCAL_AZURE_HOME=<home> npm start` (the launcher hands it the home, which it passes as
// localAzureHome): the fix must act on that home when typed into a shell, not on the default one.
describe('AccessDeniedError of a service on a local Azure home other than the default one', () => {
  let root: string;
  let home: string;
  let test: TestAzure;
  let module: TestingModule;
  let env: Record<string, string>;
  let clients: AzureClientFactory;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'local-fix-custom-home-'));
    home = join(root, "it's a copy");
    mkdirSync(home);
    test = await startTestAzure({ home, dataPlanes: [openAiDataPlane] });
    env = test.enterHost('recommendation');
    module = await Test.createTestingModule({
      imports: [
        AuthModule.forRoot({
          clientId: env.AZURE_CLIENT_ID!,
          audiences: ['cognitiveServices'],
          resources: { openAi: { endpoint: env.AZURE_OPENAI_ENDPOINT!, resourceId: env.AZURE_OPENAI_RESOURCE_ID! } },
          localAzureHome: home,
          logger: new RecordingLogger(),
        }),
      ],
    }).compile();
    await module.init();
    clients = module.get(AzureClientFactory);
  }, 120_000);
  afterAll(async () => {
    await module?.close();
    await test?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const chat = () =>
    clients.create('openAi', { maxRetries: 0 }).chat.completions.create({ model: env.AZURE_OPENAI_CHAT_DEPLOYMENT!, messages: [{ role: 'user', content: 'Reply with exactly: ok' }] });

  it('prints a local fix that, typed into a shell at the repository root as printed, restores access on that home', async () => {
    const shared = test.azure.directory.findIdentity(env.AZURE_CLIENT_ID!)!;
    expect(test.azure.roleAssignments.delete({ principalId: shared.principalId, role: findRole('Cognitive Services OpenAI User')!, scope: env.AZURE_OPENAI_RESOURCE_ID! })).toHaveLength(1);
    const error = await chat().catch((e: unknown) => e);
    expect(isAccessDeniedError(error)).toBe(true);
    const { localFixCommand } = error as AccessDeniedError;

    // The shell gets no LOCAL_AZURE_HOME of its own: only what the printed command sets reaches the CLI.
    const { LOCAL_AZURE_HOME: _ignored, ...shellEnv } = process.env;
    const typed = await runToEnd('/bin/sh', ['-c', localFixCommand], { cwd: repoRoot, env: { ...shellEnv, NX_DAEMON: 'false' } });
    expect({ code: typed.code, stderr: typed.code === 0 ? '' : typed.stderr }).toEqual({ code: 0, stderr: '' });
    expect((await chat()).choices[0]?.message.content).toBe('ok');
  }, 180_000);
});
