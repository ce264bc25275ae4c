import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { entriesFor, fingerprint, hostKeyAlgorithmsFor, hostToken, judgeHostKey, keyTypeOf, parseKnownHosts } from '../../tasks/core/known-hosts.ts';

function blob(type: string, body: Buffer): Buffer {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  return Buffer.concat([len, t, body]);
}

const keyA = blob('ssh-ed25519', randomBytes(36));
const keyB = blob('ssh-ed25519', randomBytes(36));
const rsa = blob('ssh-rsa', randomBytes(100));

function hashed(token: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(token).digest('base64')}`;
}

test('plain, hashed, port and wildcard entries match the right hosts', () => {
  const text = [
    '# comment',
    `10.0.0.1 ssh-ed25519 ${keyA.toString('base64')}`,
    `${hashed('10.0.0.2')} ssh-ed25519 ${keyA.toString('base64')}`,
    `[10.0.0.3]:2222 ssh-ed25519 ${keyA.toString('base64')}`,
    `*.lab,!bad.lab ssh-ed25519 ${keyA.toString('base64')}`,
    `@revoked 10.0.0.9 ssh-ed25519 ${keyA.toString('base64')}`,
  ].join('\n');
  const entries = parseKnownHosts(text);
  assert.equal(entries[0]!.line, 2);
  assert.equal(entriesFor(entries, '10.0.0.1').length, 1);
  assert.equal(entriesFor(entries, '10.0.0.2').length, 1);
  assert.equal(entriesFor(entries, '10.0.0.3').length, 0);
  assert.equal(entriesFor(entries, hostToken('10.0.0.3', 2222)).length, 1);
  assert.equal(entriesFor(entries, 'pi1.lab').length, 1);
  assert.equal(entriesFor(entries, 'bad.lab').length, 0);
  assert.equal(entriesFor(entries, '10.0.0.9').length, 0);
  assert.equal(entriesFor(entries, '10.0.0.11').length, 0);
});

test('a presented key is a match, unknown, or CHANGED', () => {
  const entries = parseKnownHosts(`10.0.0.1 ssh-ed25519 ${keyA.toString('base64')}\n`);
  assert.equal(judgeHostKey(entries, '10.0.0.1', keyA).kind, 'match');
  const changed = judgeHostKey(entries, '10.0.0.1', keyB);
  assert.equal(changed.kind, 'changed');
  assert.equal(changed.kind === 'changed' && changed.entry.line, 1);
  assert.equal(judgeHostKey(entries, '10.0.0.2', keyB).kind, 'unknown');
});

test('key type, fingerprint and the host key algorithms offered', () => {
  assert.equal(keyTypeOf(keyA), 'ssh-ed25519');
  assert.match(fingerprint(keyA), /^SHA256:[A-Za-z0-9+/]{43}$/);
  const entries = parseKnownHosts(`h ssh-rsa ${rsa.toString('base64')}\n`);
  assert.deepEqual(hostKeyAlgorithmsFor(entries, 'h'), ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
  assert.equal(hostKeyAlgorithmsFor(entries, 'other'), undefined);
});
