import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Test, type TestingModule } from '@nestjs/testing';
import { findRole, openAiDataPlane, repoRoot } from '@keyless/local-azure';
import { runToEnd, startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { RecordingLogger } from '@keyless/testing';
import { AuthModule, AzureClientFactory, isAccessDeniedError, type AccessDeniedError, type AuthModuleOptions } from '../../src/index.js';

// The local fix a service prints must work as printed where its local Azure runs: for a home other than the default
// one (`LOCAL_AZURE_HOME=<home> npm start` hands it the home, passed as localAzureHome), or under docker compose (which
// sets LOCAL_AZURE_COMPOSE_SERVICE, passed as localAzureComposeService; no npm script is at hand in a container).
describe('AccessDeniedError of a service whose local Azure is not the default one', () => {
  let root: string;
  let home: string;
  let test: TestAzure;
  let env: Record<string, string>;
  const modules: TestingModule[] = [];

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'local-fix-custom-home-'));
    home = join(root, "it's a copy");
    mkdirSync(home);
    test = await startTestAzure({ home, dataPlanes: [openAiDataPlane] });
    env = test.enterHost('recommendation');
  }, 120_000);
  afterAll(async () => {
    for (const module of modules) await module.close();
    await test?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  /** A chat call through the clients of an AuthModule with `options` (the identity and the resource from the host's env file). */
  async function chatWith(options: Pick<AuthModuleOptions, 'localAzureHome' | 'localAzureComposeService'>) {
    const module = await Test.createTestingModule({
      imports: [
        AuthModule.forRoot({
          clientId: env.AZURE_CLIENT_ID!,
          audiences: ['cognitiveServices'],
          resources: { openAi: { endpoint: env.AZURE_OPENAI_ENDPOINT!, resourceId: env.AZURE_OPENAI_RESOURCE_ID! } },
          ...options,
          logger: new RecordingLogger(),
        }),
      ],
    }).compile();
    modules.push(module);
    await module.init();
    const clients = module.get(AzureClientFactory);
    return () =>
      clients.create('openAi', { maxRetries: 0 }).chat.completions.create({ model: env.AZURE_OPENAI_CHAT_DEPLOYMENT!, messages: [{ role: 'user', content: 'Reply with exactly: ok' }] });
  }

  /** Removes the identity's OpenAI role and returns the AccessDeniedError `chat` then fails with. */
  async function deniedAccess(chat: () => Promise<unknown>): Promise<AccessDeniedError> {
    const shared = test.azure.directory.findIdentity(env.AZURE_CLIENT_ID!)!;
    expect(test.azure.roleAssignments.delete({ principalId: shared.principalId, role: findRole('Cognitive Services OpenAI User')!, scope: env.AZURE_OPENAI_RESOURCE_ID! })).toHaveLength(1);
    const error = await chat().catch((e: unknown) => e);
    expect(isAccessDeniedError(error)).toBe(true);
    return error as AccessDeniedError;
  }

  // The shell gets no LOCAL_AZURE_HOME of its own: only what the printed command (or the container) sets reaches the CLI.
  const { LOCAL_AZURE_HOME: _ignored, ...shellEnv } = process.env;

  describe('when it runs on another home', () => {
    it('prints a local fix that, typed into a shell at the repository root as printed, restores access on that home', async () => {
      const chat = await chatWith({ localAzureHome: home });
      const { localFixCommand } = await deniedAccess(chat);
      const typed = await runToEnd('/bin/sh', ['-c', localFixCommand], { cwd: repoRoot, env: { ...shellEnv, NX_DAEMON: 'false' } });
      expect({ code: typed.code, stderr: typed.code === 0 ? '' : typed.stderr }).toEqual({ code: 0, stderr: '' });
      expect((await chat()).choices[0]?.message.content).toBe('ok');
    }, 180_000);
  });

  describe('when its local Azure runs as a docker compose service', () => {
    it('prints a local fix that runs the CLI in that service, and that command restores access as the container runs it', async () => {
      const chat = await chatWith({ localAzureComposeService: 'local-azure' });
      const { localFixCommand, message } = await deniedAccess(chat);
      expect(message).not.toContain('npm run');
      const exec = 'docker compose exec local-azure ';
      expect(localFixCommand.startsWith(`${exec}node tools/local-azure/dist/main.js role assignment create `)).toBe(true);
      // No Docker engine here: what `docker compose exec` runs is the rest, in the image's WORKDIR (the repository's
      // layout) with the image's LOCAL_AZURE_HOME, as that container's user.
      const inContainer = await runToEnd('/bin/sh', ['-c', localFixCommand.slice(exec.length)], { cwd: repoRoot, env: { ...shellEnv, LOCAL_AZURE_HOME: home } });
      expect({ code: inContainer.code, stderr: inContainer.code === 0 ? '' : inContainer.stderr }).toEqual({ code: 0, stderr: '' });
      expect((await chat()).choices[0]?.message.content).toBe('ok');
    }, 180_000);
  });
});
