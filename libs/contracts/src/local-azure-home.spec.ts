import { execFileSync } from 'node:child_process';
import { commandForHome } from './local-azure-home.js';

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
