/**
 * SSH as people have it set up, through a lab host's real sshd: keys from a
 * real ssh-agent (started here, stopped by PID), a passphrase-protected key
 * through the agent or typed at a terminal (a pty from script(1)), and a host
 * that accepts none of what was offered.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dump, load } from 'js-yaml';
import { $, run } from '../../tasks/core/local.ts';
import { armlab, startTestLab, waitFor, type TestLab } from '../helpers/lab.ts';

const PASSPHRASE = `pass phrase 'with' "quotes"`;

describe('SSH authentication (1-host lab, real sshd and ssh-agent)', { timeout: 600_000 }, () => {
  let lab: TestLab;
  let agent: ChildProcess | undefined;
  const socket = () => join(lab.dir, 'agent.sock');
  const labKey = () => join(lab.dir, 'id_ed25519');
  const protectedKey = () => join(lab.dir, 'protected_ed25519');

  /** The lab's inventory with connection.privateKey replaced; returns its path. */
  async function inventoryWithKey(name: string, privateKey: string): Promise<string> {
    const doc = load(await readFile(lab.inventory, 'utf8')) as { connection: Record<string, unknown> };
    doc.connection.privateKey = privateKey;
    const file = join(lab.dir, `${name}.yaml`);
    await writeFile(file, dump(doc));
    return file;
  }
  const preflight = (inv: string, env: NodeJS.ProcessEnv) => armlab(['preflight', '--inventory', inv], { timeoutMs: 120_000, env: { ...process.env, SSH_AUTH_SOCK: '', ...env } });
  const agentEnv = () => ({ ...process.env, SSH_AUTH_SOCK: socket(), SSH_ASKPASS: join(lab.dir, 'askpass'), SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' });
  const ssh_add = (...args: string[]) => $({ env: agentEnv() })`ssh-add ${args}`;

  before(async () => {
    // armhf: preflight passes on it, so a connection that works exits 0.
    lab = await startTestLab([{ name: 'pi1', userland: 'armhf' }]);
    await cp(labKey(), protectedKey());
    await cp(`${labKey()}.pub`, `${protectedKey()}.pub`);
    await run`ssh-keygen -q -p -P ${''} -N ${PASSPHRASE} -f ${protectedKey()}`;
    await writeFile(join(lab.dir, 'askpass'), `#!/bin/sh\nprintf '%s\\n' '${PASSPHRASE.replace(/'/g, `'\\''`)}'\n`, { mode: 0o700 });
    agent = spawn('ssh-agent', ['-D', '-a', socket()], { stdio: 'ignore' });
    await waitFor('ssh-agent to listen', async () => (await $({ env: agentEnv(), nothrow: true })`ssh-add -l`).exitCode === 1, 10_000);
  });

  after(async () => {
    agent?.kill('SIGTERM');
    await lab?.down();
  });

  test('the agent alone: no key file at the inventory path, the agent holds the key', async () => {
    await ssh_add(labKey());
    try {
      const r = await preflight(await inventoryWithKey('agent-only', join(lab.dir, 'no-such-key')), { SSH_AUTH_SOCK: socket() });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^pi1\s+server\s+armv7l\/armhf/m);
    } finally {
      await ssh_add('-D');
    }
  });

  test('a passphrase-protected key: through the agent, else refused without a terminal, naming what to do', async () => {
    const inv = await inventoryWithKey('protected', protectedKey());
    const refused = await preflight(inv, {});
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    const text = refused.stdout + refused.stderr;
    assert.ok(text.includes(`pi1: no SSH key to offer: no agent (SSH_AUTH_SOCK is not set); key file ${protectedKey()} (passphrase-protected, and no terminal to ask for its passphrase).`), text);
    assert.match(text, /load your key into ssh-agent \(eval "\$\(ssh-agent\)"; ssh-add KEY\)/);
    assert.ok(!text.includes(PASSPHRASE));

    await ssh_add(protectedKey());
    try {
      const viaAgent = await preflight(inv, { SSH_AUTH_SOCK: socket() });
      assert.equal(viaAgent.code, 0, viaAgent.stdout + viaAgent.stderr);
      assert.doesNotMatch(viaAgent.stdout + viaAgent.stderr, /passphrase/i, 'no prompt: the agent holds the key');
    } finally {
      await ssh_add('-D');
    }
  });

  /** preflight on a terminal (a pty from script(1)); types the passphrase when asked, if one is given. */
  async function preflightOnTerminal(inv: string, env: NodeJS.ProcessEnv, passphrase?: string): Promise<{ code: number | null | 'timeout'; out: string }> {
    const command = [process.execPath, '--import', 'tsx', 'tasks/cli.ts', 'preflight', '--inventory', inv].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const child = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, SSH_AUTH_SOCK: '', ...env } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      if (passphrase !== undefined) {
        await waitFor('the passphrase prompt', async () => out.includes('Enter passphrase for key '), 60_000);
        child.stdin.write(`${passphrase}\r`);
      }
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 120_000))]);
      return { code, out };
    } finally {
      child.kill('SIGKILL');
    }
  }

  test('a passphrase-protected key typed at a terminal: asked once, without echo', async () => {
    const { code, out } = await preflightOnTerminal(await inventoryWithKey('typed', protectedKey()), {}, PASSPHRASE);
    assert.equal(code, 0, out);
    assert.ok(out.includes(`Enter passphrase for key ${protectedKey()}: `), out);
    assert.equal(out.split('Enter passphrase').length - 1, 1, 'asked once');
    assert.ok(!out.includes('quotes'), 'the passphrase is not echoed');
    assert.match(out, /pi1\s/);
  });

  test('a protected key with no .pub beside it, held by the agent: not asked for on a terminal', async () => {
    // An OpenSSH key file carries its public half unencrypted: that is what matches it with the agent's keys.
    const bare = join(lab.dir, 'bare_ed25519');
    await cp(protectedKey(), bare);
    await ssh_add(bare);
    try {
      const { code, out } = await preflightOnTerminal(await inventoryWithKey('bare', bare), { SSH_AUTH_SOCK: socket() });
      assert.equal(code, 0, out);
      assert.doesNotMatch(out, /passphrase/i);
    } finally {
      await ssh_add('-D');
    }
  });

  test('an agent that refuses to sign with one key (ssh-add -c, no one to confirm) goes on to its next key', async () => {
    const confirmKey = join(lab.dir, 'confirm_ed25519');
    await run`ssh-keygen -q -t ed25519 -N ${''} -C ${'confirm@armlab'} -f ${confirmKey}`;
    const address = (await readFile(lab.inventory, 'utf8')).match(/address: (\S+)/)![1]!;
    // The host accepts both keys, so it asks the agent to sign with the first, which it refuses.
    await $({ input: await readFile(`${confirmKey}.pub`, 'utf8') })`ssh -i ${labKey()} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes pi@${address} ${'cat >> .ssh/authorized_keys'}`;
    await ssh_add('-c', confirmKey);
    await ssh_add(labKey());
    try {
      const r = await preflight(await inventoryWithKey('confirm', join(lab.dir, 'no-such-key')), { SSH_AUTH_SOCK: socket() });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^pi1\s+server\s+armv7l\/armhf/m);
      await ssh_add('-d', labKey());
      const refused = await preflight(await inventoryWithKey('confirm', join(lab.dir, 'no-such-key')), { SSH_AUTH_SOCK: socket() });
      assert.equal(refused.code, 1, refused.stdout + refused.stderr);
      assert.match((refused.stdout + refused.stderr).replace(/\s+/g, ' '), /confirm@armlab\), which failed: /);
    } finally {
      await ssh_add('-D');
    }
  });

  test('a host that accepts none of the keys: the agent and the key file are named, with how to check', async () => {
    const stranger = join(lab.dir, 'stranger_ed25519');
    const other = join(lab.dir, 'other_ed25519');
    await run`ssh-keygen -q -t ed25519 -N ${''} -C ${'stranger@armlab'} -f ${stranger}`;
    await run`ssh-keygen -q -t ed25519 -N ${''} -C ${'other@armlab'} -f ${other}`;
    await ssh_add(stranger);
    after(() => ssh_add('-D'));
    const fp = (file: string) => run`ssh-keygen -lf ${file}`.then((out) => out.split(' ')[1]!);
    const r = await preflight(await inventoryWithKey('wrong', other), { SSH_AUTH_SOCK: socket() });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const text = (r.stdout + r.stderr).replace(/\s+/g, ' ');
    const address = (await readFile(lab.inventory, 'utf8')).match(/address: (\S+)/)![1]!;
    assert.ok(
      text.includes(`pi1 (pi@${address}:22): authentication failed; tried key file ${other} (ED25519 ${await fp(other)} other@armlab) and the agent at ${socket()} (ED25519 ${await fp(stranger)} stranger@armlab).`),
      text,
    );
    assert.ok(text.includes(`check with ssh -p 22 -i ${other} pi@${address}`), text);
  });
});
