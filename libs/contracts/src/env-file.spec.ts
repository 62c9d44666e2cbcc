import { execFileSync } from 'node:child_process';
import { envFileLine, parseEnvFile } from './env-file.js';

/** `NAME` as a POSIX shell has it after `set -a; <text>; set +a`. */
function inShell(text: string, name: string): string {
  return execFileSync('/bin/sh', ['-c', `set -a\n${text}\nset +a\nprintf %s "$${name}"`], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
}

describe(envFileLine.name, () => {
  describe('when the value holds only characters no shell treats specially', () => {
    it('writes it as it is', () => {
      expect(envFileLine('PGHOST', 'localhost')).toBe('PGHOST=localhost');
      expect(envFileLine('AZURE_AUTHORITY_HOST', 'https://localhost:8443/a-b_c@d%e+f,g=h')).toBe('AZURE_AUTHORITY_HOST=https://localhost:8443/a-b_c@d%e+f,g=h');
    });
  });

  describe('when it holds other characters but no single quote', () => {
    it('writes it in single quotes, which compose reads literally too', () => {
      expect(envFileLine('NODE_EXTRA_CA_CERTS', '/tmp/my home/$HOME/ca.pem')).toBe("NODE_EXTRA_CA_CERTS='/tmp/my home/$HOME/ca.pem'");
    });
  });

  describe('when it holds a single quote but no backquote', () => {
    it('writes it in double quotes with \\, " and $ escaped, as both a shell and compose read them', () => {
      expect(envFileLine('NODE_EXTRA_CA_CERTS', `/tmp/it's "my" $HOME\\ca.pem`)).toBe(`NODE_EXTRA_CA_CERTS="/tmp/it's \\"my\\" \\$HOME\\\\ca.pem"`);
    });
  });

  describe('when it holds a single quote and a backquote', () => {
    it("writes it for the shell: in single quotes, each ' as '\\''", () => {
      expect(envFileLine('A', "it's `x`")).toBe(`A='it'\\''s \`x\`'`);
    });
  });

  it.each([
    [''],
    ['plain'],
    ['/tmp/my home/tls/ca.pem'],
    ["/tmp/it's mine/tls/ca.pem"],
    ['/tmp/"quoted" $HOME ${PATH} `id` $(id) ; & | < > * ? [a] ~ # !'],
    ["/tmp/it's `id` and $HOME"],
    ['ends with a backslash\\'],
    ["a'b\\"],
    ['two\nlines'],
    ['\\n is not a newline, \\\\ two backslashes'],
    ['tab\there'],
  ])('writes %j so that a POSIX shell sourcing the line and parseEnvFile both read it back as it is', (value) => {
    const line = envFileLine('VALUE', value);
    expect(inShell(line, 'VALUE')).toBe(value);
    expect(parseEnvFile(`${line}\n`)).toEqual({ VALUE: value });
  });
});

describe(parseEnvFile.name, () => {
  it('skips comments and blank lines and reads each assignment', () => {
    expect(parseEnvFile("# written by the local Azure\n\nA=1\nB='two words'\n  # indented comment\nC=\"it's\"\n")).toEqual({ A: '1', B: 'two words', C: "it's" });
  });

  it('reads a value that spans lines inside quotes', () => {
    expect(parseEnvFile("A='one\ntwo'\nB=3\n")).toEqual({ A: 'one\ntwo', B: '3' });
  });

  it.each([
    ["A='open\n", /line 1: the value of A opens a ' that is not closed/],
    ['# c\nB="open\n', /line 2: the value of B opens a " that is not closed/],
    ['A=1\nnot an assignment\n', /line 2: not a NAME=value assignment/],
    ['A=1\nB=two words\n', /line 2: the value of B has unquoted whitespace — put the value in single quotes/],
    ['A=1 # a comment\n', /line 1: the value of A has unquoted whitespace/],
    ['A=1\r\nB=2\r\n', /line 1: ends in a carriage return — save the file with LF/],
  ])('refuses %j, naming the line', (text, message) => {
    expect(() => parseEnvFile(text)).toThrow(message);
  });
});
