import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { framedScript } from '../../tasks/core/ssh.ts';
import { quote, redact, Secret, sh } from '../../tasks/core/shell.ts';

const HOSTILE = [
  `a'b"c $(id); \`x\``,
  "it's",
  '',
  ' leading and trailing ',
  '$HOME ${PATH} $((1+1)) !history',
  'line1\nline2\n',
  '\t\\backslash\\\\',
  "''''",
  '-n',
  '*?[a-z]{x,y}~',
  'ünïcödé ✓',
  '; rm -rf / #',
  '\u0001\u007f',
];

test('quote() leaves safe words bare and single-quotes the rest', () => {
  assert.equal(quote('pi1'), 'pi1');
  assert.equal(quote('/var/lib/rancher'), '/var/lib/rancher');
  assert.equal(quote(42), '42');
  assert.equal(quote(''), "''");
  assert.equal(quote("it's"), `'it'\\''s'`);
  assert.equal(quote('a b'), "'a b'");
});

test('hostile strings survive bash and dash byte-for-byte', () => {
  for (const shell of ['bash', 'dash']) {
    for (const value of HOSTILE) {
      const cmd = sh`printf '%s' ${value}`;
      const out = execFileSync(shell, ['-c', cmd.text]);
      assert.equal(out.toString(), value, `${shell}: ${JSON.stringify(value)}`);
    }
  }
});

test('arrays expand to one quoted word per element', () => {
  const cmd = sh`printf '<%s>' ${HOSTILE}`;
  const out = execFileSync('bash', ['-c', cmd.text]).toString();
  assert.equal(out, HOSTILE.map((v) => `<${v}>`).join(''));
});

test('nested commands embed unquoted, their values already quoted', () => {
  const inner = sh`printf '%s' ${"x'y"}`;
  const outer = sh`${inner} && printf '%s' ${'z z'}`;
  assert.equal(execFileSync('dash', ['-c', outer.text]).toString(), "x'yz z");
});

test('a Secret cannot be put into a command, and is redacted from text', () => {
  const token = new Secret('K10abcdef::server:s3cr3t');
  assert.throws(() => sh`echo ${token as never}`, /cannot be interpolated/);
  assert.equal(String(token), '***');
  assert.equal(JSON.stringify({ token }), '{"token":"***"}');
  assert.equal(redact('token=K10abcdef::server:s3cr3t end'), 'token=*** end');
});

test('a framed script is parsed whole before its stdin payload is read', () => {
  // The payload looks like shell; it must arrive as data, never run as script.
  const payload = 'echo PWNED\nexit 7\n';
  const script = framedScript(sh`cat > /dev/null; head -c 3 /dev/null; echo done`);
  const out = execFileSync('bash', ['-s'], { input: script + payload }).toString();
  assert.equal(out, 'done\n');
  const copy = framedScript(sh`cat`);
  assert.equal(execFileSync('bash', ['-s'], { input: copy + payload }).toString(), payload);
});

test('a failing command stops the script (set -e) and sets the exit code', () => {
  const script = framedScript(sh`false\necho unreachable`);
  try {
    execFileSync('bash', ['-s'], { input: script, stdio: ['pipe', 'pipe', 'pipe'] });
    assert.fail('expected non-zero exit');
  } catch (err) {
    const e = err as { status: number; stdout: Buffer };
    assert.equal(e.status, 1);
    assert.equal(e.stdout.toString(), '');
  }
});
