import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordingLogger } from '@keyless/testing';
import { resolveAuthOptions } from '../auth-options.js';
import { AzureIdentityService } from '../azure-identity.service.js';
import { TokenAcquisitionError } from '../errors.js';

describe('developer mode', () => {
  // A PATH without the tools: the SDK's real CLI credentials spawn `az` / `azd` and find neither.
  let emptyPath: string;
  let savedPath: string | undefined;

  beforeAll(() => {
    emptyPath = mkdtempSync(join(tmpdir(), 'no-cli-'));
    savedPath = process.env.PATH;
    process.env.PATH = emptyPath;
  });
  afterAll(() => {
    process.env.PATH = savedPath;
    rmSync(emptyPath, { recursive: true, force: true });
  });

  describe.each([
    ['azure-cli', 'Azure CLI (az login)'],
    ['azure-developer-cli', 'Azure Developer CLI (azd auth login)'],
  ] as const)('when %s is chosen', (mode, tool) => {
    const clientId = '6b1f8a52-3c9d-4e07-a1b2-9f4e5d6c7b80';
    const logger = new RecordingLogger();
    let identity: AzureIdentityService;

    beforeAll(() => {
      identity = new AzureIdentityService(resolveAuthOptions({ mode, clientId, logger, tokenRequestTimeoutInMs: 5_000 }));
    });
    afterAll(() => identity.close());

    it('says so at startup, with the client id used when deployed', () => {
      expect(logger.messages('log')).toEqual([
        `Azure credential: developer mode, ${tool}: tokens are the signed-in developer's, not the managed identity's (${clientId}, used when deployed); role assignments must name the developer.`,
      ]);
      expect(identity.identity).toEqual({ mode, clientId });
    });

    it('runs the developer tool, never the managed identity, and explains its absence with DeveloperLoginFailed', async () => {
      const error = await identity.getToken('cognitiveServices').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TokenAcquisitionError);
      expect(error).toMatchObject({ code: 'DeveloperLoginFailed', context: { mode, resource: 'https://cognitiveservices.azure.com' } });
      expect((error as Error).message).toContain(`Developer mode (${tool}) could not get a token for https://cognitiveservices.azure.com`);
      expect((error as Error).message).toMatch(/could(n't| not) be found/i);
    });
  });
});
