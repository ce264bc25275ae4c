/**
 * k3s lifecycle against a 3-host armhf lab (pi1 server, pi2 and pi3 agents)
 * booting real systemd. k3s itself is the STAND-IN from tests/k3s-stand-in,
 * served by a local mirror: what is verified only against it is listed in
 * the README.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { dump, load } from 'js-yaml';
import { run } from '../../tasks/core/local.ts';
import { sh } from '../../tasks/core/shell.ts';
import { Connection } from '../../tasks/core/ssh.ts';
import { loadInventory } from '../../tasks/inventory/load.ts';
import { mirrorCacheKey } from '../../tasks/k3s/download.ts';
import type { Inventory } from '../../tasks/inventory/types.ts';
import { armlab, startTestLab, type TestLab } from '../helpers/lab.ts';
import { startMirror, type Mirror } from '../helpers/k3s-mirror.ts';

const V1 = 'v1.31.12+k3s1';
const V2 = 'v1.31.13+k3s1';
const BAD = 'v1.32.0+k3s1';
const PI_CMDLINE_START = 'console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02';

describe('k3s lifecycle (k3s stand-in)', { timeout: 1_200_000 }, () => {
  let lab: TestLab;
  let mirror: Mirror;
  let cache: string;
  let inv: string;
  let raw: Record<string, unknown>;
  const env = () => ({ ...process.env, ARMLAB_CACHE: cache });

  async function writeInventory(change: (doc: Record<string, unknown>) => void): Promise<void> {
    change(raw);
    await writeFile(inv, dump(raw));
  }
  async function onNode(name: string, command: ReturnType<typeof sh>): Promise<string> {
    const inventory: Inventory = await loadInventory(inv);
    const conn = await Connection.open(inventory.nodes.find((n) => n.name === name)!);
    try {
      return (await conn.run(command)).stdout;
    } finally {
      conn.close();
    }
  }
  const k3s = (args: string[], timeoutMs = 600_000) => armlab([...args, '--inventory', inv], { timeoutMs, env: env() });
  // A (re)start makes a new invocation at once; with Type=notify the unit enters 'active' only later, once k3s is ready.
  const serviceStart = (name: string, svc: string) => onNode(name, sh`systemctl show -p InvocationID --value ${svc}`);

  before(async () => {
    lab = await startTestLab([
      { name: 'pi1', userland: 'armhf' },
      { name: 'pi2', userland: 'armhf' },
      { name: 'pi3', userland: 'armhf' },
    ]);
    // Inside the lab directory, so that tearing the lab down (or sweeping it) removes it too.
    cache = join(lab.dir, 'cache');
    mirror = await startMirror(join(lab.dir, 'mirror'), [V1, V2, BAD], { stable: V1 });
    await mirror.corrupt(BAD, 'k3s-armhf');
    inv = lab.inventory;
    raw = load(await readFile(inv, 'utf8')) as Record<string, unknown>;
    await writeInventory((d) => {
      d.k3s = { version: 'stable', mirror: mirror.url };
    });
  });

  after(async () => {
    await mirror?.close();
    await lab?.down();
  });

  test('--offline with an empty cache names what is missing and touches nothing', async () => {
    await writeInventory((d) => {
      d.k3s = { version: V1, mirror: mirror.url };
    });
    const r = await k3s(['k3s:install', '--offline', '--no-reboot']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /k3s:artifacts\s+failed\s+--offline: the cache .*\/cache\/k3s\/mirrors\/[0-9a-f]{12}\/v1\.31\.12\+k3s1 lacks install\.sh, k3s-armhf, sha256sum-arm\.txt/);
    assert.doesNotMatch(r.stdout, /k3s:prep/, 'nothing is prepared before the artefacts are there');
    assert.equal(await onNode('pi1', sh`test -e /usr/local/bin/k3s && echo yes || echo no; cat /boot/firmware/cmdline.txt`), `no\n${PI_CMDLINE_START} rootfstype=ext4 fsck.repair=yes rootwait quiet\n`);
  });

  test('fresh install: files, modes, agents joined; the token never in a process list or armlab output', async () => {
    await writeInventory((d) => {
      d.k3s = { version: 'stable', mirror: mirror.url };
    });
    const bootBefore = await onNode('pi2', sh`cut -d' ' -f22 /proc/1/stat`);
    // Sample every process on this machine (the hosts' included) while the install runs.
    const samples: string[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        samples.push((await promisify(execFile)('ps', ['-eo', 'args'], { maxBuffer: 1 << 24 })).stdout);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const r = await k3s(['k3s:install', '--verbose']);
    sampling = false;
    await sampler;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^pi1\s+k3s:prep\s+changed\s+add cgroup flags to \/boot\/firmware\/cmdline\.txt; rebooted$/m);
    assert.match(r.stdout, /^pi1\s+k3s:install\s+changed\s+install k3s v1\.31\.12\+k3s1; write config\.yaml; run install\.sh \(k3s\); k3s --version: v1\.31\.12\+k3s1 \(armlab-stand-in\)$/m);
    assert.match(r.stdout, /^pi2\s+k3s:install\s+changed\s+install k3s v1\.31\.12\+k3s1; write config\.yaml; write the cluster token file; run install\.sh \(k3s-agent\); k3s --version: v1\.31\.12\+k3s1 \(armlab-stand-in\)$/m);
    for (const n of ['pi1', 'pi2', 'pi3']) assert.match(r.stdout, new RegExp(`^${n}\\s+k3s:ready\\s+unchanged\\s+Ready \\(v1\\.31\\.12\\+k3s1\\)$`, 'm'));
    assert.notEqual(await onNode('pi2', sh`cut -d' ' -f22 /proc/1/stat`), bootBefore, 'pi2 rebooted for its cgroup flags');

    const token = (await onNode('pi1', sh`cat /var/lib/rancher/k3s/server/token`)).trim();
    assert.match(token, /^K10[0-9a-f]{64}::server:[0-9a-f]{32}$/);
    assert.ok(samples.length > 10, `only ${samples.length} process samples`);
    assert.equal(samples.filter((s) => s.includes(token)).length, 0, 'the token appeared in a process list');
    assert.equal((r.stdout + r.stderr).includes(token), false, 'the token appeared in armlab output');

    // Files in place, with the right content and modes.
    const server = await onNode('pi1', sh`stat -c '%a %n' /etc/rancher/k3s/config.yaml /usr/local/bin/k3s /etc/systemd/system/k3s.service.env /usr/local/bin/k3s-uninstall.sh; cat /etc/rancher/k3s/config.yaml; readlink /usr/local/bin/kubectl`);
    assert.match(server, /^600 \/etc\/rancher\/k3s\/config\.yaml\n755 \/usr\/local\/bin\/k3s\n600 \/etc\/systemd\/system\/k3s\.service\.env\n755 \/usr\/local\/bin\/k3s-uninstall\.sh\n/);
    assert.match(server, /^disable:\n  - traefik\n  - servicelb\nwrite-kubeconfig-mode: '0600'\nnode-name: pi1\nnode-label:\n  - armlab\.dev\/lab-userland=armhf\ntls-san:\n  - 10\.231\.\d+\.11\n/m);
    assert.match(server, /\nk3s\n$/);
    const agent = await onNode('pi2', sh`stat -c '%a %n' /etc/rancher/k3s/armlab-token /etc/systemd/system/k3s-agent.service.env; cat /etc/systemd/system/k3s-agent.service.env; cat /etc/rancher/k3s/armlab-token`);
    assert.match(agent, /^600 \/etc\/rancher\/k3s\/armlab-token\n600 \/etc\/systemd\/system\/k3s-agent\.service\.env\n/);
    assert.match(agent, /^K3S_URL='https:\/\/10\.231\.\d+\.11:6443'$/m);
    assert.match(agent, /^K3S_TOKEN_FILE='\/etc\/rancher\/k3s\/armlab-token'$/m);
    assert.equal(agent.trim().split('\n').at(-1), token, 'the agent holds the cluster token in its 0600 file');
    const nodes = await onNode('pi1', sh`k3s kubectl get nodes`);
    for (const n of ['pi1', 'pi2', 'pi3']) assert.match(nodes, new RegExp(`^${n}\\tReady\\t`, 'm'));

    // One download per cluster: each artefact fetched once, the channel asked once.
    const fetched = mirror.requests.filter((p) => !p.startsWith('/tags/'));
    assert.deepEqual(fetched.sort(), ['/channels/stable', '/install.sh', `/${V1}/k3s-armhf`, `/${V1}/sha256sum-arm.txt`].sort());
  });

  test('second run: every step skipped with its reason, nothing restarted, no reboot', async () => {
    const starts = await Promise.all([serviceStart('pi1', 'k3s'), serviceStart('pi2', 'k3s-agent'), serviceStart('pi3', 'k3s-agent')]);
    const boot = await onNode('pi1', sh`cut -d' ' -f22 /proc/1/stat`);
    const before = mirror.requests.length;
    const r = await k3s(['k3s:install']);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /^pi1\s+k3s:prep\s+unchanged\s+prepared: \/boot\/firmware\/cmdline\.txt has the cgroup flags, swap off$/m);
    assert.match(r.stdout, /^pi1\s+k3s:install\s+unchanged\s+k3s v1\.31\.12\+k3s1 \(armlab-stand-in\) installed, config unchanged, k3s active$/m);
    assert.match(r.stdout, /^pi3\s+k3s:install\s+unchanged\s+k3s v1\.31\.12\+k3s1 \(armlab-stand-in\) installed, config unchanged, k3s-agent active$/m);
    assert.deepEqual(await Promise.all([serviceStart('pi1', 'k3s'), serviceStart('pi2', 'k3s-agent'), serviceStart('pi3', 'k3s-agent')]), starts);
    assert.equal(await onNode('pi1', sh`cut -d' ' -f22 /proc/1/stat`), boot, 'no second reboot');
    const cmdline = await onNode('pi1', sh`cat /boot/firmware/cmdline.txt`);
    assert.equal(cmdline, `${PI_CMDLINE_START} rootfstype=ext4 fsck.repair=yes rootwait quiet cgroup_memory=1 cgroup_enable=memory\n`);
    assert.deepEqual(mirror.requests.slice(before), ['/channels/stable', `/tags/${V1}`], 'only the channel is asked again');
  });

  test('render prints what install wrote, token redacted, without connecting', async () => {
    const r = await armlab(['render', '--inventory', inv, '--limit', 'pi2']);
    assert.equal(r.code, 0);
    const onPi2 = await onNode('pi2', sh`cat /etc/rancher/k3s/config.yaml`);
    assert.ok(r.stdout.includes(onPi2), `render output:\n${r.stdout}\nnode file:\n${onPi2}`);
    assert.match(r.stdout, /K3S_TOKEN_FILE: \/etc\/rancher\/k3s\/armlab-token/);
    assert.match(r.stdout, /armlab-token \(mode 0600\): \*\*\*/);
  });

  test('a config change rewrites config and restarts k3s on that node only', async () => {
    const starts = await Promise.all([serviceStart('pi1', 'k3s'), serviceStart('pi2', 'k3s-agent'), serviceStart('pi3', 'k3s-agent')]);
    await writeInventory((d) => {
      const nodes = d.nodes as { name: string; labels: Record<string, string> }[];
      nodes.find((n) => n.name === 'pi3')!.labels.rack = 'b';
    });
    const r = await k3s(['k3s:install']);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /^pi3\s+k3s:install\s+changed\s+config\.yaml changed$/m);
    assert.match(r.stdout, /^pi2\s+k3s:install\s+unchanged/m);
    const after = await Promise.all([serviceStart('pi1', 'k3s'), serviceStart('pi2', 'k3s-agent'), serviceStart('pi3', 'k3s-agent')]);
    assert.equal(after[0], starts[0]);
    assert.equal(after[1], starts[1]);
    assert.notEqual(after[2], starts[2], 'pi3 restarted');
    assert.match(await onNode('pi3', sh`cat /etc/rancher/k3s/config.yaml`), /^  - rack=b$/m);
  });

  test('a checksum mismatch is refused: the download deleted, nothing uploaded', async () => {
    const shaBefore = await onNode('pi1', sh`sha256sum /usr/local/bin/k3s`);
    await writeInventory((d) => {
      d.k3s = { version: BAD, mirror: mirror.url };
    });
    const r = await k3s(['k3s:install']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /k3s:artifacts\s+failed\s+k3s-armhf v1\.32\.0\+k3s1: sha256 [0-9a-f]{64} does not match [0-9a-f]{64} from sha256sum-arm\.txt; deleted the download and uploaded nothing/);
    assert.equal(await onNode('pi1', sh`sha256sum /usr/local/bin/k3s`), shaBefore);
    assert.equal((await run`ls ${join(cache, 'k3s', 'mirrors', mirrorCacheKey(mirror.url), BAD)}`).split('\n').includes('k3s-armhf'), false);
  });

  test('a version bump upgrades the server before the agents, and all end Ready at the new version', async () => {
    await writeInventory((d) => {
      d.k3s = { version: V2, mirror: mirror.url };
    });
    const r = await k3s(['k3s:install']);
    assert.equal(r.code, 0, r.stdout);
    for (const n of ['pi1', 'pi2', 'pi3']) {
      assert.match(r.stdout, new RegExp(`^${n}\\s+k3s:install\\s+changed\\s+upgrade k3s v1\\.31\\.12\\+k3s1 → v1\\.31\\.13\\+k3s1`, 'm'));
      assert.match(r.stdout, new RegExp(`^${n}\\s+k3s:ready\\s+unchanged\\s+Ready \\(v1\\.31\\.13\\+k3s1\\)$`, 'm'));
    }
    const mtime = async (n: string) => Number(await onNode(n, sh`stat -c %.9Y /usr/local/bin/k3s`));
    const [s, a2, a3] = await Promise.all([mtime('pi1'), mtime('pi2'), mtime('pi3')]);
    assert.ok(s <= a2 && s <= a3, `server binary replaced at ${s}, agents at ${a2}, ${a3}`);
    assert.match(await onNode('pi1', sh`k3s --version`), /^k3s version v1\.31\.13\+k3s1 /);
  });

  test('a node that cannot join: bounded wait, then a diagnosis naming it', async () => {
    const pi3 = lab.plan.hosts.find((h) => h.name === 'pi3')!;
    const server = lab.plan.hosts.find((h) => h.name === 'pi1')!;
    const un = await k3s(['k3s:uninstall', '--limit', 'pi3']);
    assert.equal(un.code, 0, un.stdout);
    assert.match(un.stdout, /^pi3\s+k3s:delete-node\s+changed\s+Node pi3 removed from the cluster on pi1$/m);
    assert.doesNotMatch(await onNode('pi1', sh`k3s kubectl get nodes`), /^pi3\t/m);
    await run`ip -n ${pi3.netns} route add blackhole ${`${server.address}/32`}`;
    try {
      const r = await k3s(['k3s:install', '--ready-timeout', '15']);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stdout, /^pi3\s+k3s:ready\s+failed\s+not Ready after 15s: not registered with the server$/m);
      assert.match(r.stdout, /^pi2\s+k3s:ready\s+unchanged\s+Ready/m);
      assert.match(r.stdout, /^diagnosis:\n== pi3: not registered with the server\n/m);
      assert.match(r.stdout, /k3s-agent\.service/);
      assert.match(r.stdout, /--- journal/);
    } finally {
      await run`ip -n ${pi3.netns} route del blackhole ${`${server.address}/32`}`;
    }
    const again = await k3s(['k3s:install']);
    assert.equal(again.code, 0, again.stdout);
  });

  test('kubeconfig merges the cluster context and keeps the others', async () => {
    const kc = join(lab.dir, 'kubeconfig');
    await writeFile(kc, dump({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'work', cluster: { server: 'https://work:6443' } }], users: [{ name: 'work', user: { token: 'x' } }], contexts: [{ name: 'work', context: { cluster: 'work', user: 'work' } }], 'current-context': 'work' }));
    const r = await armlab(['kubeconfig', '--inventory', inv, '--kubeconfig', kc]);
    assert.equal(r.code, 0, r.stderr);
    const merged = load(await readFile(kc, 'utf8')) as { contexts: { name: string }[]; clusters: { name: string; cluster: { server: string } }[]; 'current-context': string };
    const cluster = `lab-${lab.name}`;
    assert.deepEqual(merged.contexts.map((c) => c.name), ['work', cluster]);
    assert.equal(merged.clusters.find((c) => c.name === cluster)?.cluster.server, `https://${lab.plan.hosts[0]!.address}:6443`);
    assert.equal(merged['current-context'], cluster);
    assert.equal(((await run`stat -c %a ${kc}`)), '600');
    const again = await armlab(['kubeconfig', '--inventory', inv, '--kubeconfig', kc]);
    assert.match(again.stdout, /^unchanged: /);
  });

  test('uninstall leaves no k3s files on any node', async () => {
    const r = await k3s(['k3s:uninstall']);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /^pi2\s+k3s:uninstall\s+changed\s+ran k3s-agent-uninstall\.sh; no k3s files left$/m);
    assert.match(r.stdout, /^pi1\s+k3s:uninstall\s+changed\s+ran k3s-uninstall\.sh; no k3s files left$/m);
    for (const n of ['pi1', 'pi2', 'pi3']) {
      assert.equal(await onNode(n, sh`ls -d /usr/local/bin/k3s* /etc/rancher/k3s /var/lib/rancher/k3s /etc/systemd/system/k3s* 2>/dev/null || true`), '');
    }
    const again = await k3s(['k3s:uninstall']);
    assert.match(again.stdout, /^pi1\s+k3s:uninstall\s+unchanged\s+k3s is not installed$/m);
  });
});
