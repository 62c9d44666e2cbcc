import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recommendationEnvironmentSchema } from './recommendation.config.js';

const required = {
  AZURE_CLIENT_ID: '5ab33c32-3a9a-40c9-9c78-5a5f6d9427f0',
  AZURE_OPENAI_ENDPOINT: 'https://oai-x.openai.azure.com',
  AZURE_OPENAI_CHAT_DEPLOYMENT: 'gpt-4o-mini',
  AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT: 'text-embedding-3-small',
  SERVICEBUS_FULLY_QUALIFIED_NAMESPACE: 'sb-x.servicebus.windows.net',
};

describe('recommendationEnvironmentSchema', () => {
  it('gives blank settings their defaults: never the current folder, never port 0', () => {
    const env = recommendationEnvironmentSchema.parse({ ...required, RECOMMENDATION_DATA_DIR: '', PORT: '', LOG_LEVEL: ' ', APPLICATIONINSIGHTS_CONNECTION_STRING: '' });
    expect(env).toMatchObject({ RECOMMENDATION_DATA_DIR: '.data/recommendation', PORT: 3001, LOG_LEVEL: 'info' });
    expect(env.APPLICATIONINSIGHTS_CONNECTION_STRING).toBeUndefined();
  });

  it('refuses the root of a git work tree as its data folder, naming it and the variable to set', () => {
    const root = mkdtempSync(join(tmpdir(), 'recommendation-git-'));
    mkdirSync(join(root, '.git'));
    try {
      const result = recommendationEnvironmentSchema.safeParse({ ...required, RECOMMENDATION_DATA_DIR: root });
      expect(result.success).toBe(false);
      expect(result.error!.issues).toEqual([
        expect.objectContaining({ path: ['RECOMMENDATION_DATA_DIR'], message: expect.stringContaining(`${root} is the root of a git work tree`) }),
      ]);
      expect(recommendationEnvironmentSchema.safeParse({ ...required, RECOMMENDATION_DATA_DIR: join(root, '.data') }).success).toBe(true);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
