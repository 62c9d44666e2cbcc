import { ManagedIdentityCredential } from '@azure/identity';
import pg from 'pg';
import { postgresDataPlane } from '../../src/postgres/postgres-data-plane.js';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';

describe('smoke', () => {
  let test: TestAzure;
  let credential: ManagedIdentityCredential;
  beforeAll(async () => {
    const t0 = performance.now();
    test = await startTestAzure({ dataPlanes: [postgresDataPlane] });
    console.log('start ms', performance.now() - t0);
    const env = test.enterHost('recommendation');
    console.log(env);
    credential = new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! });
  }, 120_000);
  afterAll(() => test.stop());

  it('logs in', async () => {
    const client = new pg.Client({ password: async () => (await credential.getToken('https://ossrdbms-aad.database.windows.net/.default')).token });
    await client.connect();
    const r = await client.query('select current_user, current_database(), $1::int + 1 as x', [41]);
    console.log(r.rows, client.processID);
    await client.query('CREATE EXTENSION IF NOT EXISTS vector');
    await client.query('CREATE TABLE items (id int primary key, embedding vector(3))');
    await client.query('CREATE INDEX ON items USING hnsw (embedding vector_cosine_ops)');
    await client.query("INSERT INTO items VALUES (1, '[1,0,0]'), (2, '[0,1,0]'), (3, '[0.9,0.1,0]')");
    console.log((await client.query("SELECT id FROM items ORDER BY embedding <=> $1 LIMIT 2", ['[1,0,0]'])).rows);
    await client.end();
  }, 60_000);
});
