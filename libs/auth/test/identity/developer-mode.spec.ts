import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Test, type TestingModule } from '@nestjs/testing';
import { openAiDataPlane } from '@keyless/local-azure';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { RecordingLogger } from '@keyless/testing';
import { AuthModule, AzureClientFactory, AzureIdentityService } from '../../src/index.js';
import { TokenAcquisitionError } from '../../src/diagnostics/index.js';

/**
 * The Azure CLI cannot sign in here (no Azure), so `az` on PATH is a stand-in with the real CLI's interface:
 * `az account get-access-token --output json --resource <r> [--tenant <t>]` prints the CLI's JSON, with a
 * real token of the local Entra standing in for the developer's (the shared identity's, through the identity
 * endpoint); while "signed out" it prints the CLI's message and exits 1. Every call is recorded.
 */
function installAzStandIn(dir: string, env: Record<string, string>): { calls: () => string[]; signOut: () => void } {
  const callsFile = join(dir, 'calls.log');
  const signedOutFile = join(dir, 'signed-out');
  writeFileSync(
    join(dir, 'az-token.mjs'),
    `const args = process.argv.slice(2);
const resource = args[args.indexOf('--resource') + 1];
const url = ${JSON.stringify(env.IDENTITY_ENDPOINT)} + '?api-version=2019-08-01&client_id=${env.AZURE_CLIENT_ID}&resource=' + encodeURIComponent(resource);
const token = await (await fetch(url, { headers: { 'x-identity-header': ${JSON.stringify(env.IDENTITY_HEADER)} } })).json();
const expires = new Date(Number(token.expires_on) * 1000);
process.stdout.write(JSON.stringify({ accessToken: token.access_token, expiresOn: expires.toISOString().replace('T', ' ').replace('Z', '000'), expires_on: Number(token.expires_on), subscription: 'local', tenant: ${JSON.stringify(env.AZURE_TENANT_ID)}, tokenType: 'Bearer' }, null, 2));
`,
  );
  const az = join(dir, 'az');
  writeFileSync(
    az,
    `#!/bin/sh
echo "$*" >> '${callsFile}'
if [ -f '${signedOutFile}' ]; then echo "ERROR: Please run 'az login' to setup account." >&2; exit 1; fi
exec '${process.execPath}' '${join(dir, 'az-token.mjs')}' "$@"
`,
  );
  chmodSync(az, 0o755);
  return {
    calls: () => (existsSync(callsFile) ? readFileSync(callsFile, 'utf8').trim().split('\n') : []),
    signOut: () => writeFileSync(signedOutFile, ''),
  };
}

// One host per file: @azure/identity picks its managed-identity source once per process (test file).
describe('developer mode with a signed-in Azure CLI (az on PATH; host "recommendation")', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let module: TestingModule;
  let identity: AzureIdentityService;
  let az: ReturnType<typeof installAzStandIn>;
  const bin = mkdtempSync(join(tmpdir(), 'az-stand-in-'));
  const savedPath = process.env.PATH;
  const logger = new RecordingLogger();

  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes: [openAiDataPlane] });
    env = test.enterHost('recommendation');
    az = installAzStandIn(bin, env);
    process.env.PATH = `${bin}:${savedPath}`;
    module = await Test.createTestingModule({
      imports: [
        AuthModule.forRoot({
          mode: 'azure-cli',
          clientId: env.AZURE_CLIENT_ID!,
          audiences: ['cognitiveServices'],
          resources: { openAi: { endpoint: env.AZURE_OPENAI_ENDPOINT!, resourceId: env.AZURE_OPENAI_RESOURCE_ID!, apiVersion: env.OPENAI_API_VERSION! } },
          logger,
        }),
      ],
    }).compile();
    await module.init();
    identity = module.get(AzureIdentityService);
  }, 30_000);
  afterAll(async () => {
    process.env.PATH = savedPath;
    await module?.close();
    await test?.stop();
    rmSync(bin, { recursive: true, force: true });
  });

  it('passes the startup access check with the token az prints, having asked az once', () => {
    expect(logger.messages('log')).toEqual(expect.arrayContaining([expect.stringMatching(/^Startup access check passed in \d+ ms: tokens held for cognitiveServices \(azure-cli/)]));
    expect(az.calls()).toEqual(['account get-access-token --output json --resource https://cognitiveservices.azure.com']);
    expect(test.azure.auditLog.signIns({ limit: 10 }).map((s) => s.resource)).toEqual(['https://cognitiveservices.azure.com']);
  });

  it('calls Azure OpenAI with that token, and 20 concurrent callers of a new audience start az once', async () => {
    const openAi = module.get(AzureClientFactory).create('openAi', { maxRetries: 0 });
    const chat = await openAi.chat.completions.create({ model: env.AZURE_OPENAI_CHAT_DEPLOYMENT!, messages: [{ role: 'user', content: 'Reply with exactly: ok' }] });
    expect(chat.choices[0]?.message.content).toBe('ok');

    const tokens = await Promise.all(Array.from({ length: 20 }, () => identity.getToken('serviceBus')));
    expect(new Set(tokens.map((t) => t.token)).size).toBe(1);
    expect(az.calls()).toEqual([
      'account get-access-token --output json --resource https://cognitiveservices.azure.com',
      'account get-access-token --output json --resource https://servicebus.azure.net/',
    ]);
  });

  it('reports a signed-out CLI as DeveloperLoginFailed that says to run az login', async () => {
    az.signOut();
    const error = await identity.getToken('keyVault').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TokenAcquisitionError);
    expect(error).toMatchObject({ code: 'DeveloperLoginFailed', context: { mode: 'azure-cli', resource: 'https://vault.azure.net' } });
    expect((error as Error).message).toMatch(/^Developer mode \(Azure CLI \(az login\)\) could not get a token for https:\/\/vault\.azure\.net: Please run 'az login'/);
    // Tokens already held keep serving.
    await expect(identity.getToken('serviceBus')).resolves.toMatchObject({ token: expect.any(String) });
  });
});
