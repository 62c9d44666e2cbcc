import { createServer, type Server } from 'node:net';
import { z } from 'zod';
import { freeAdjacentPorts, missingAppServiceSettings, npmAsTyped, RecordingLogger, rejectionOf, seededRandom, waitFor } from './index.js';

describe('waitFor', () => {
  it('returns the first value that is neither undefined nor false', async () => {
    let calls = 0;
    await expect(waitFor('the third call', () => (++calls === 3 ? calls : undefined), 5_000, 1)).resolves.toBe(3);
  });

  it('fails naming what it waited for once the deadline passes', async () => {
    await expect(waitFor('a thing that never happens', () => false, 20, 5)).rejects.toThrow('timed out after 20 ms waiting for a thing that never happens');
  });
});

describe('rejectionOf', () => {
  it('returns the error of a rejected promise and fails for a resolved one', async () => {
    const error = new Error('refused');
    await expect(rejectionOf(Promise.reject(error))).resolves.toBe(error);
    await expect(rejectionOf(Promise.resolve(1))).rejects.toThrow('expected the operation to fail');
  });
});

describe('seededRandom', () => {
  it('gives the same numbers in [0, 1) for the same seed, and others for another seed', () => {
    const draw = (seed: number): number[] => Array.from({ length: 1_000 }, seededRandom(seed));
    const numbers = draw(7);
    expect(draw(7)).toEqual(numbers);
    expect(draw(8)).not.toEqual(numbers);
    expect(numbers.every((n) => n >= 0 && n < 1)).toBe(true);
    expect(new Set(numbers).size).toBeGreaterThan(990);
  });
});

describe('freeAdjacentPorts', () => {
  const servers: Server[] = [];
  const listen = async (port: number): Promise<number> => {
    const server = createServer();
    servers.push(server);
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
    return (server.address() as { port: number }).port;
  };
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  });

  it('returns a port whose neighbours up to count can all be listened on', async () => {
    const port = await freeAdjacentPorts(3);
    for (const each of [port, port + 1, port + 2]) await expect(listen(each)).resolves.toBe(each);
  });

  it('skips a candidate one of whose neighbours is taken, and one whose block reaches beyond 65535', async () => {
    const taken = await listen(0);
    const free = await freeAdjacentPorts(2);
    const offered = [taken - 1, 65_535, free];
    await expect(freeAdjacentPorts(2, async () => offered.shift()!)).resolves.toBe(free);
    expect(offered).toEqual([]);
  });

  it('refuses a count below 1', async () => {
    await expect(freeAdjacentPorts(0)).rejects.toThrow('count must be a whole number of ports, at least 1, not 0');
  });
});

describe('npmAsTyped', () => {
  it("returns the arguments and the variables npm gets from a command as a shell reads it, quotes and all", () => {
    expect(npmAsTyped(`LOCAL_AZURE_HOME='/tmp/it'\\''s $HOME' npm run -s local-azure -- role list --scope "a b"`, ['LOCAL_AZURE_HOME'])).toEqual({
      args: ['run', '-s', 'local-azure', '--', 'role', 'list', '--scope', 'a b'],
      env: { LOCAL_AZURE_HOME: "/tmp/it's $HOME" },
    });
  });

  it('reports a variable the command does not set as unset, even when the caller has it set', () => {
    process.env.NPM_AS_TYPED_PROBE = 'from the caller';
    try {
      expect(npmAsTyped('TOKEN=$(npm run -s token)', ['NPM_AS_TYPED_PROBE'])).toEqual({ args: ['run', '-s', 'token'], env: { NPM_AS_TYPED_PROBE: undefined } });
    } finally {
      delete process.env.NPM_AS_TYPED_PROBE;
    }
  });

  it('fails when the command does not start npm', () => {
    expect(() => npmAsTyped('true', [])).toThrow('the command did not start npm: true');
  });
});

describe('RecordingLogger', () => {
  it('keeps level, message and context, and lists messages by level', () => {
    const logger = new RecordingLogger();
    logger.warn('slow', 'Receiver');
    logger.error('failed', 'stack trace', 'Sender');
    logger.log('started');
    expect(logger.lines).toEqual([
      { level: 'warn', message: 'slow', context: 'Receiver' },
      { level: 'error', message: 'failed', context: 'Sender' },
      { level: 'log', message: 'started' },
    ]);
    expect(logger.messages('warn')).toEqual(['slow']);
    expect(logger.messages()).toEqual(['slow', 'failed', 'started']);
  });

  it('keeps the fields of a structured line apart from its message', () => {
    const logger = new RecordingLogger();
    logger.warn({ status: 431 }, 'refused', 'HttpParser');
    logger.log({ ready: true }, 'Health');
    expect(logger.lines).toEqual([
      { level: 'warn', message: 'refused', context: 'HttpParser', fields: { status: 431 } },
      { level: 'log', message: '', context: 'Health', fields: { ready: true } },
    ]);
  });
});

describe('missingAppServiceSettings', () => {
  it('returns the required variables infra/ does not set on the App Services, not those it sets, those App Service sets itself, or those with a default', () => {
    const schema = z.object({
      AZURE_CLIENT_ID: z.string(),
      PGHOST: z.string(),
      NOT_IN_BICEP: z.string(),
      PORT: z.string(),
      IDENTITY_ENDPOINT: z.string(),
      WITH_DEFAULT: z.string().default('x'),
      OPTIONAL: z.string().optional(),
    });
    expect(missingAppServiceSettings(schema)).toEqual(['NOT_IN_BICEP']);
  });
});
