import { execFileSync } from 'node:child_process';
import { commandForCompose, commandForHome } from './local-azure-home.js';

describe(commandForHome.name, () => {
  describe('when the home is the default one', () => {
    it('returns the command as it is', () => {
      expect(commandForHome('npm run -s token', { root: '/repo/.local-azure', isDefault: true })).toBe('npm run -s token');
    });
  });

  describe('when the home is another one', () => {
    it('prefixes the command with LOCAL_AZURE_HOME, the path unquoted where no shell needs quotes', () => {
      expect(commandForHome('npm start', { root: '/tmp/keyless-2/home.a', isDefault: false })).toBe('LOCAL_AZURE_HOME=/tmp/keyless-2/home.a npm start');
    });

    it.each([['/tmp/my copy'], ["/tmp/it's"], ['/tmp/$HOME `id` "x"'], ['/tmp/a;b&c|d*'], ['/tmp/line\nbreak']])(
      'quotes %j so that a POSIX shell hands the command that very path',
      (root) => {
        const command = commandForHome('printenv LOCAL_AZURE_HOME', { root, isDefault: false });
        expect(execFileSync('/bin/sh', ['-c', command], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } })).toBe(`${root}\n`);
      },
    );
  });
});

describe(commandForCompose.name, () => {
  describe('when the command runs the local Azure CLI', () => {
    it.each([['npm run local-azure -- role assignment create --role "Cognitive Services OpenAI User" --scope openAi'], ['npm run -s local-azure -- role assignment create --role "Cognitive Services OpenAI User" --scope openAi']])(
      'runs %j in the compose service\'s container, with the arguments as they are',
      (command) => {
        expect(commandForCompose(command, 'local-azure')).toBe(
          'docker compose exec local-azure node tools/local-azure/dist/main.js role assignment create --role "Cognitive Services OpenAI User" --scope openAi',
        );
      },
    );
  });

  describe('when the command starts the local Azure or the system', () => {
    it('starts the compose service, with a new image (it holds infra/access.json)', () => {
      expect(commandForCompose('npm run local-azure', 'local-azure')).toBe('docker compose up -d --build local-azure');
      expect(commandForCompose('npm start', 'local-azure')).toBe('docker compose up -d --build');
    });
  });

  describe('when the command is another one', () => {
    it('returns it as it is', () => {
      expect(commandForCompose('npm run -s token', 'local-azure')).toBe('npm run -s token');
    });
  });
});
