import { consoleCell, consoleLine } from './console-line.js';

describe(consoleLine.name, () => {
  describe('when the line holds line breaks', () => {
    it('continues it on indented lines, so nothing after a break starts a line', () => {
      expect(consoleLine('resource=x\n[portal] operator signed in\r\n[rbac] allowed')).toBe('resource=x\n    [portal] operator signed in\n    [rbac] allowed');
    });
  });

  describe('when the line holds characters a terminal acts on', () => {
    it.each([
      ['ESC, which starts ANSI sequences', '\u001b[2J\u001b]0;title\u0007', '\\u001b[2J\\u001b]0;title\\u0007'],
      ['a lone carriage return', 'denied\rallowed', 'denied\\u000dallowed'],
      ['DEL and C1 controls', 'a\u007fb\u009bc', 'a\\u007fb\\u009bc'],
      ['Unicode line and paragraph separators', 'a\u2028b\u2029c', 'a\\u2028b\\u2029c'],
      ['bidirectional controls', 'user\u202eredli\u2066x\u2069', 'user\\u202eredli\\u2066x\\u2069'],
    ])('writes %s as escapes', (_what, line, written) => {
      expect(consoleLine(line)).toBe(written);
    });
  });

  describe('when the line holds nothing a terminal acts on', () => {
    it('keeps it as it is, tabs and text beyond ASCII included', () => {
      const line = '[sign-in] failure\thost=gateway resource=https://cognitiveservices.azure.com café 東京 😀';
      expect(consoleLine(line)).toBe(line);
    });
  });
});

describe(consoleCell.name, () => {
  it('writes line breaks and tabs as escapes too: a cell is one line of its table', () => {
    expect(consoleCell('probe\n[portal] forged\r\n\tx\u001b[31m')).toBe('probe\\u000a[portal] forged\\u000d\\u000a\\u0009x\\u001b[31m');
  });

  it('keeps text beyond ASCII as it is', () => {
    expect(consoleCell('café 東京 😀')).toBe('café 東京 😀');
  });
});
