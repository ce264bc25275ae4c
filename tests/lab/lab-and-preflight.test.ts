/**
 * Against a real emulated lab: 3 armhf Pis and one amd64-userland host, each
 * with its own sshd, hostname, filesystem and containerd.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { dump, load } from 'js-yaml';
import { run } from '../../tasks/core/local.ts';
import { sh, Secret } from '../../tasks/core/shell.ts';
import { Connection } from '../../tasks/core/ssh.ts';
import { loadInventory } from '../../tasks/inventory/load.ts';
import { labHostInit, labStopHost, labUp } from '../../tasks/lab/lab.ts';
import { netnsExists } from '../../tasks/lab/network.ts';
import { readState } from '../../tasks/lab/state.ts';
import { armlab, processesInHost, startTestLab, waitFor, type TestLab } from '../helpers/lab.ts';

const HOSTILE = `a'b"c $(id); \`x\``;

describe('emulated Pi lab + preflight', { timeout: 900_000 }, () => {
  let lab: TestLab;
  let inv: string;

  before(async () => {
    lab = await startTestLab([
      { name: 'pi1', userland: 'armhf' },
      { name: 'pi2', userland: 'armhf' },
      { name: 'pi3', userland: 'armhf' },
      { name: 'pi4', userland: 'amd64' },
    ]);
    inv = lab.inventory;
  });

  after(async () => {
    if (lab) await lab.down();
  });

  test('lab:up again changes nothing; lab:status shows every host and its containerd', async () => {
    const again = await armlab(['lab:up', '--name', lab.name, '--dir', lab.dir, '--nodes', '4', '--amd64', 'pi4', '--inventory-out', inv]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /unchanged: lab ".*" is up, nothing to do/);
    assert.doesNotMatch(again.stdout, /^changed: /m);
    const status = await armlab(['lab:status', '--name', lab.name, '--dir', lab.dir]);
    assert.equal(status.code, 0, status.stdout);
    for (const h of ['pi1', 'pi2', 'pi3', 'pi4']) assert.match(status.stdout, new RegExp(`${h}\\s+10\\.231\\.\\d+\\.\\d+\\s+\\S+\\s+up \\(pid \\d+\\)\\s+listening`));
  });

  test('each host is its own Pi: hostname, arch, identity, disk, containerd socket', async () => {
    const inventory = await loadInventory(inv);
    const [n1, n2, , n4] = inventory.nodes;
    const c1 = await Connection.open(n1!);
    const c2 = await Connection.open(n2!);
    const c4 = await Connection.open(n4!);
    try {
      const facts = (await c1.run(sh`hostname; uname -m; dpkg --print-architecture; tr -d '\\0' < /sys/firmware/devicetree/base/model; echo; cat /boot/firmware/cmdline.txt; test -S /run/k3s/containerd/containerd.sock && echo socket; id -un`, { become: false })).stdout.split('\n');
      assert.deepEqual(facts.slice(0, 4), ['pi1', 'armv7l', 'armhf', 'Raspberry Pi 4 Model B Rev 1.4']);
      assert.match(facts[4] ?? '', /rootwait/);
      assert.equal(facts[5], 'socket');
      assert.equal(facts[6], 'pi');
      assert.equal((await c1.run(sh`id -u`)).stdout.trim(), '0', 'sudo works for pi');
      assert.deepEqual((await c4.run(sh`uname -m; dpkg --print-architecture`)).stdout.trim().split('\n'), ['x86_64', 'amd64']);
      // Files on one host are invisible to the others; /var/lib/rancher is a plain directory, not overlay.
      await c1.run(sh`echo only-on-pi1 > /var/lib/rancher/marker`);
      assert.equal((await c2.run(sh`test -e /var/lib/rancher/marker && echo yes || echo no`)).stdout.trim(), 'no');
      assert.notEqual((await c1.run(sh`stat -f -c %T /var/lib/rancher`)).stdout.trim(), 'overlayfs');
      // With the host's real sshd: the cipher a Pi decrypts fastest, not the AES-GCM ssh2 prefers on this machine.
      assert.equal(c1.cipher, 'chacha20-poly1305@openssh.com');
    } finally {
      for (const c of [c1, c2, c4]) c.close();
    }
  });

  test('a hostile string reaches the remote side byte-for-byte, in argv and on stdin', async () => {
    const inventory = await loadInventory(inv);
    const conn = await Connection.open(inventory.nodes[0]!);
    try {
      assert.equal((await conn.run(sh`printf '%s' ${HOSTILE}`)).stdout, HOSTILE);
      assert.equal((await conn.run(sh`printf '%s' ${HOSTILE}`, { become: false })).stdout, HOSTILE);
      const path = `/tmp/${HOSTILE.replace(/\//g, '_')}`;
      await conn.writeFile(path, new Secret(HOSTILE), 0o600);
      const back = (await conn.run(sh`stat -c %a ${path}; sha256sum < ${path}`)).stdout.split('\n');
      assert.equal(back[0], '600');
      assert.equal(back[1]?.split(' ')[0], createHash('sha256').update(HOSTILE).digest('hex'));
      // A stream that fails as it is sent fails the command at once.
      await assert.rejects(conn.writeFile('/tmp/never', createReadStream('/nonexistent/armlab')), /pi1: command failed \(its input failed: ENOENT/);
      // …and leaves neither the target nor its temp file behind.
      assert.equal((await conn.run(sh`ls -a /tmp | grep -c '^[.]armlab[.]' || true; test -e /tmp/never && echo exists || echo absent`)).stdout, '0\nabsent\n');
      // One that fails after part of it was sent: failed once the remote side has ended, its temp file removed after that.
      const failing = new Readable({ read() {} });
      failing.push(Buffer.alloc(256 * 1024, 1));
      setTimeout(() => failing.destroy(new Error('read error on the source disk')), 300);
      await assert.rejects(conn.writeFile('/tmp/never', failing), /pi1: command failed \(its input failed: read error on the source disk/);
      assert.equal((await conn.run(sh`ls -a /tmp | grep -c '^[.]armlab[.]' || true; test -e /tmp/never && echo exists || echo absent`)).stdout, '0\nabsent\n');
      // A failure carries node, command, exit code and the stderr tail.
      await assert.rejects(conn.run(sh`echo oops >&2; exit 3`), (err: Error) => {
        assert.match(err.message, /^pi1: command failed \(exit code 3\): `echo oops >&2; exit 3`\n  stderr: oops$/);
        return true;
      });
    } finally {
      conn.close();
    }
  });

  test('secrets travel on stdin: never in a command, a log line or the remote process list', async () => {
    const inventory = await loadInventory(inv);
    const seen: string[] = [];
    const conn = await Connection.open(inventory.nodes[0]!, { onCommand: (_n, text) => seen.push(text) });
    const watcher = await Connection.open(inventory.nodes[0]!);
    const token = new Secret(`K10${createHash('sha256').update(lab.name).digest('hex')}::server:0123456789abcdef`);
    try {
      await conn.writeFile('/etc/armlab-test/token', token, 0o600);
      assert.equal((await conn.run(sh`stat -c '%a %U' /etc/armlab-test/token; cat /etc/armlab-test/token`)).stdout, `600 root\n${token.reveal()}`);
      // Hold a command open on its stdin, with the secret already sent, and look at every process on the host.
      const slow = new PassThrough();
      const pending = conn.run(sh`cat > /tmp/held`, { stdin: slow });
      slow.write(token.reveal());
      await waitFor('cat on pi1', async () => (await processesInHost(lab.dir, 'pi1', (a) => a.includes('cat'))).length > 0, 20_000);
      const ps = (await watcher.run(sh`ps -eo args`)).stdout;
      slow.end();
      await pending;
      assert.match(ps, /bash -s/);
      assert.equal(ps.includes(token.reveal()), false, 'the token is in a process list');
      assert.equal(seen.some((t) => t.includes(token.reveal())), false, 'the token is in a command text');
    } finally {
      conn.close();
      watcher.close();
    }
  });

  test('a command that outlives its timeout is cut off and reported', async () => {
    const inventory = await loadInventory(inv);
    const conn = await Connection.open(inventory.nodes[3]!);
    try {
      const started = Date.now();
      await assert.rejects(conn.run(sh`sleep 30`, { timeoutMs: 1500 }), /^RemoteCommandError: pi4: command failed \(timed out after 1\.5s\): `sleep 30`/);
      assert.ok(Date.now() - started < 10_000);
      assert.equal((await conn.run(sh`echo still usable`)).stdout, 'still usable\n', 'the connection survives a timed-out command');
    } finally {
      conn.close();
    }
  });

  test('preflight passes on the armhf hosts, and twice gives the same result', async () => {
    const first = await armlab(['preflight', '--inventory', inv, '--limit', 'pi1,pi2,pi3']);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    for (const h of ['pi1', 'pi2', 'pi3']) {
      if (!new RegExp(`^${h}\\s+\\S+\\s+\\S+\\s+\\S+\\s+Raspberry Pi 4`, 'm').test(first.stdout)) {
        // Seen once: a host without its device-tree model. Show how its identity unit fared.
        const node = (await loadInventory(inv)).nodes.find((n) => n.name === h)!;
        const c = await Connection.open(node);
        try {
          const why = await c.run(sh`systemctl status --no-pager armlab-lab-identity 2>&1 | tail -n 12; findmnt /sys/firmware; ls -l /sys/firmware/devicetree/base 2>&1`, { allowFailure: true });
          process.stderr.write(`${h} identity:\n${why.stdout}\n`);
        } finally {
          c.close();
        }
      }
      assert.match(first.stdout, new RegExp(`^${h}\\s+(server|agent)\\s+armv7l/armhf\\s+hard\\s+Raspberry Pi 4 Model B Rev 1\\.4 .*ready$`, 'm'));
      assert.match(first.stdout, new RegExp(`^${h}\\s+preflight\\s+unchanged\\s+ready`, 'm'));
    }
    const second = await armlab(['preflight', '--inventory', inv, '--limit', 'pi1,pi2,pi3']);
    assert.equal(second.code, 0);
    const verdicts = (out: string) => out.split('\n').filter((l) => /^pi\d\s+preflight/.test(l));
    assert.deepEqual(verdicts(second.stdout), verdicts(first.stdout));
  });

  test('a host with amd64 userland is refused with its reason; the others pass', async () => {
    const r = await armlab(['preflight', '--inventory', inv]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^pi4\s+preflight\s+failed\s+refused: userland is amd64, not armhf: armlab's images are linux\/arm\/v7 hard-float/m);
    assert.match(r.stdout, /^pi4\s+agent\s+x86_64\/amd64 ✗\s+n\/a \(x86-64\).*REFUSED$/m);
    assert.match(r.stdout, /^pi1\s+preflight\s+unchanged\s+ready/m);
    assert.match(r.stdout, /preflight: FAILED on pi4$/m);
  });

  test('a host stopped mid-run: the others finish, the summary names it, exit non-zero; a restart brings it back', async () => {
    const inventory = await loadInventory(inv);
    const pre = await Connection.open(inventory.nodes[1]!);
    await pre.run(sh`echo kept > /home/pi/sd-card; echo gone > /tmp/volatile`);
    pre.close();

    let stopped = false;
    const running = armlab(['preflight', '--inventory', inv, '--limit', 'pi1,pi2,pi3'], { timeoutMs: 120_000 });
    // Power off pi2 while its probe script runs (a bash -s inside pi2's namespaces).
    await waitFor('the probe on pi2', async () => (await processesInHost(lab.dir, 'pi2', (a) => a.includes('-s') && a.some((x) => x.endsWith('bash')))).length > 0, 60_000, 20);
    stopped = await labStopHost(lab.dir, 'pi2');
    const r = await running;
    assert.ok(stopped);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /^pi1\s+preflight\s+unchanged\s+ready/m);
    assert.match(r.stdout, /^pi3\s+preflight\s+unchanged\s+ready/m);
    assert.match(r.stdout, /^pi2\s+preflight\s+failed\s+pi2: (command failed \((connection lost while it ran|ended without an exit status|killed by \w+)\): `kv\(\) \{ .* …`|connection lost)/m);
    assert.match(r.stdout, /preflight: FAILED on pi2$/m);

    const up = await labUp((await readState(lab.dir))!.spec, inv);
    assert.ok(up.changes.some((c) => c.startsWith('started pi2')), up.changes.join('\n'));
    const back = await Connection.open(inventory.nodes[1]!);
    try {
      assert.equal((await back.run(sh`cat /home/pi/sd-card; test -e /tmp/volatile && echo tmp-kept || echo tmp-cleared`)).stdout, 'kept\ntmp-cleared\n');
    } finally {
      back.close();
    }
  });

  test('a changed host key is refused; an unknown one only with --accept-new-host-keys', async () => {
    const raw = load(await readFile(inv, 'utf8')) as { connection: { knownHosts: string } };
    const knownHosts = `${lab.dir}/known_hosts.test`;
    const otherKey = `${lab.dir}/other_key`;
    await run`ssh-keygen -q -t ed25519 -N ${''} -f ${otherKey}`;
    const pi1 = (await loadInventory(inv)).nodes[0]!;
    const other = (await readFile(`${otherKey}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ');
    await writeFile(knownHosts, `${pi1.address} ${other}\n`);
    raw.connection.knownHosts = knownHosts;
    const altered = `${lab.dir}/inventory-changed-key.yaml`;
    await writeFile(altered, dump(raw));

    const changed = await armlab(['preflight', '--inventory', altered, '--limit', 'pi1', '--accept-new-host-keys']);
    assert.equal(changed.code, 1);
    assert.match(changed.stdout, /^pi1\s+preflight\s+failed\s+pi1 \(10\.231\.\d+\.\d+\): host key has CHANGED: .*known_hosts\.test:1 holds a ssh-ed25519 key, the host presented ssh-ed25519 SHA256:/m);

    await writeFile(knownHosts, '');
    const unknown = await armlab(['preflight', '--inventory', altered, '--limit', 'pi1']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stdout, /host key ssh-ed25519 SHA256:\S+ is not in .*known_hosts\.test/);
    const accepted = await armlab(['preflight', '--inventory', altered, '--limit', 'pi1', '--accept-new-host-keys']);
    assert.equal(accepted.code, 0, accepted.stdout);
    const pinned = await readFile(knownHosts, 'utf8');
    assert.equal(pinned.trim(), `${pi1.address} ${(await readFile(`${lab.dir}/hosts/pi1/ssh_host_ed25519_key.pub`, 'utf8')).split(' ').slice(0, 2).join(' ')}`);
    const again = await armlab(['preflight', '--inventory', altered, '--limit', 'pi1']);
    assert.equal(again.code, 0, 'the accepted key is now pinned');
  });

  test('--verbose shows the commands; unknown --limit names are refused with a suggestion', async () => {
    const v = await armlab(['preflight', '--inventory', inv, '--limit', 'pi1', '--verbose']);
    assert.equal(v.code, 0);
    assert.match(v.stderr, /^\[pi1\] \$ kv\(\) \{/m);
    const bad = await armlab(['preflight', '--inventory', inv, '--limit', 'pi9']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--limit: no node "pi9" in .*inventory\.yaml; did you mean "pi1"\?/);
  });

  test('lab:down removes exactly what the lab created', async () => {
    const state = (await readState(lab.dir))!;
    const bystander = `armlab-${lab.name}x-keep`;
    await run`ip netns add ${bystander}`;
    try {
      const pids = Object.values(state.hosts).map((h) => h.unshare.pid);
      for (const h of ['pi1', 'pi2', 'pi3', 'pi4']) pids.push((await labHostInit(lab.dir, h))!);
      const removed = await lab.down();
      assert.ok(removed.includes(`directory ${lab.dir}`));
      for (const ns of state.created.netns) assert.equal(await netnsExists(ns), false, ns);
      assert.equal(await netnsExists(bystander), true, 'a namespace the lab did not create is left alone');
      assert.equal((await run`ip -o link show`).includes(`armlab-${lab.name}:`), false);
      for (const pid of pids) assert.equal(existsSync(`/proc/${pid}`), false, `pid ${pid}`);
      assert.equal(existsSync(lab.dir), false);
      assert.deepEqual(await lab.down(), [], 'a second lab:down has nothing left to remove');
    } finally {
      await run`ip netns delete ${bystander}`;
    }
  });
});
