import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assetFor, assetUrl, describeArch, expectedSha256, k3sArchOf, parseK3sVersion, sourcesFor, tagFromChannelAnswer, UPSTREAM } from '../../tasks/k3s/artifacts.ts';
import { CMDLINE_FILES, rebootPending, withCgroupFlags } from '../../tasks/k3s/cmdline.ts';
import { prepSteps } from '../../tasks/k3s/prep.ts';
import { K3S_PROBE, parseK3sProbe } from '../../tasks/k3s/probe.ts';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configText, digest, installEnv, needsToken, renderConfig, SERVER_TOKEN_PATH } from '../../tasks/k3s/config.ts';
import { mergeKubeconfig, removeCluster, retarget, type KubeConfig } from '../../tasks/k3s/kubeconfig-merge.ts';
import { parseInventory } from '../../tasks/inventory/load.ts';

const inv = (extra = '', nodes = '  - {name: pi1, address: 10.0.0.1, role: server, labels: {rack: a, zone: z1}}\n  - {name: pi2, address: 10.0.0.2, role: agent}\n') =>
  parseInventory(`cluster: lab\nnodes:\n${nodes}${extra}`, 'x.yaml', '/i', '/h');

test('cmdline: flags appended once, every argument and its order kept, one line', () => {
  const pi = 'console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait quiet\n';
  const once = withCgroupFlags(pi);
  assert.equal(once.line, 'console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait quiet cgroup_memory=1 cgroup_enable=memory');
  assert.equal(once.changed, true);
  assert.deepEqual(withCgroupFlags(`${once.line}\n`), { line: once.line, changed: false });
  assert.equal(withCgroupFlags('a cgroup_enable=memory b\n').line, 'a cgroup_enable=memory b cgroup_memory=1');
  assert.equal(withCgroupFlags('a cgroup_disable=memory cgroup_memory=1 cgroup_enable=memory\n').line, 'a cgroup_memory=1 cgroup_enable=memory');
  assert.deepEqual(withCgroupFlags('a  b cgroup_memory=1 cgroup_enable=memory\nstray\n'), { line: 'a b cgroup_memory=1 cgroup_enable=memory', changed: true });
});

test('a reboot is owed only when the flags are set, not booted, and the memory cgroup is off', () => {
  assert.equal(rebootPending(true, 'console=tty1 root=/dev/mmcblk0p2', 'off'), true);
  assert.equal(rebootPending(true, 'console=tty1 cgroup_memory=1 cgroup_enable=memory', 'off'), false);
  assert.equal(rebootPending(true, 'console=tty1', 'on'), false);
  assert.equal(rebootPending(false, 'console=tty1', 'off'), false);
});

test('artefacts: arch mapping, URLs with + encoded, checksums, channels, version lines', () => {
  assert.deepEqual(assetFor('armhf'), { arch: 'armhf', binary: 'k3s-armhf', checksums: 'sha256sum-arm.txt' });
  assert.equal(assetFor('arm64').binary, 'k3s-arm64');
  assert.equal(assetFor('amd64').binary, 'k3s');
  assert.throws(() => assetFor('armel'), /no release for architecture "armel"/);
  assert.equal(assetUrl(UPSTREAM, 'v1.31.12+k3s1', 'k3s-armhf'), 'https://github.com/k3s-io/k3s/releases/download/v1.31.12%2Bk3s1/k3s-armhf');
  assert.deepEqual(sourcesFor('http://127.0.0.1:8080/k3s/'), { releases: 'http://127.0.0.1:8080/k3s', channels: 'http://127.0.0.1:8080/k3s/channels', installScript: 'http://127.0.0.1:8080/k3s/install.sh' });
  const a = 'a'.repeat(64);
  const b = 'b'.repeat(64);
  assert.equal(expectedSha256(`${a}  k3s-armhf\n${b}  k3s-airgap-images-arm.tar\n`, 'k3s-armhf'), a);
  assert.equal(expectedSha256(`${a}  k3s-armhf.sig\n`, 'k3s-armhf'), null);
  assert.equal(tagFromChannelAnswer('https://github.com/k3s-io/k3s/releases/tag/v1.31.12%2Bk3s1', ''), 'v1.31.12+k3s1');
  assert.equal(tagFromChannelAnswer('http://m/channels/stable', 'v1.32.3+k3s1\n'), 'v1.32.3+k3s1');
  assert.equal(tagFromChannelAnswer('http://m/channels/stable', 'oops'), null);
  assert.equal(parseK3sVersion('k3s version v1.31.12+k3s1 (abcdef12)\ngo version go1.22.12\n'), 'v1.31.12+k3s1');
  assert.equal(parseK3sVersion('bash: k3s: command not found'), null);
});

test('config: servers disable traefik and servicelb; labels, tls-san and extras; agents get URL and token file through env', () => {
  const i = inv('k3s:\n  config:\n    tls-san: [lab.local]\n    disable: [local-storage]\n    flannel-backend: host-gw\n');
  const server = renderConfig(i, i.nodes[0]!);
  assert.deepEqual(server, {
    disable: ['traefik', 'servicelb', 'local-storage'],
    'write-kubeconfig-mode': '0600',
    'node-name': 'pi1',
    'node-label': ['rack=a', 'zone=z1'],
    'tls-san': ['10.0.0.1', 'lab.local'],
    'flannel-backend': 'host-gw',
  });
  assert.equal(configText(server).split('\n')[1], 'disable:');
  assert.deepEqual(renderConfig(i, i.nodes[1]!), { 'node-name': 'pi2' });
  assert.deepEqual(installEnv(i, i.nodes[1]!), { INSTALL_K3S_SKIP_DOWNLOAD: 'true', INSTALL_K3S_SKIP_START: 'true', INSTALL_K3S_EXEC: 'agent', K3S_URL: 'https://10.0.0.1:6443', K3S_TOKEN_FILE: '/etc/rancher/k3s/armlab-token' });
  assert.deepEqual(installEnv(i, i.nodes[0]!), { INSTALL_K3S_SKIP_DOWNLOAD: 'true', INSTALL_K3S_SKIP_START: 'true', INSTALL_K3S_EXEC: 'server' });
  assert.equal(needsToken(i, i.nodes[0]!), false);
  assert.equal(needsToken(i, i.nodes[1]!), true);
});

test('config: several servers: the first inits the cluster, the others join it', () => {
  const i = inv('', '  - {name: s1, address: 10.0.0.1, role: server}\n  - {name: s2, address: 10.0.0.2, role: server}\n  - {name: s3, address: 10.0.0.3, role: server}\n');
  assert.equal(renderConfig(i, i.nodes[0]!)['cluster-init'], true);
  assert.equal(renderConfig(i, i.nodes[0]!).server, undefined);
  assert.equal(renderConfig(i, i.nodes[1]!).server, 'https://10.0.0.1:6443');
  assert.equal(renderConfig(i, i.nodes[2]!)['token-file'], '/etc/rancher/k3s/armlab-token');
  assert.equal(needsToken(i, i.nodes[2]!), true);
});

test('kubeconfig: retargeted at the first server and named after the cluster; merge keeps other contexts', () => {
  const k3s: KubeConfig = {
    apiVersion: 'v1',
    clusters: [{ name: 'default', cluster: { server: 'https://127.0.0.1:6443', 'certificate-authority-data': 'CA' } }],
    users: [{ name: 'default', user: { 'client-certificate-data': 'C', 'client-key-data': 'K' } }],
    contexts: [{ name: 'default', context: { cluster: 'default', user: 'default' } }],
    'current-context': 'default',
  };
  const ours = retarget(k3s, 'pilab', 'https://10.0.0.1:6443');
  assert.deepEqual(ours.clusters, [{ name: 'pilab', cluster: { server: 'https://10.0.0.1:6443', 'certificate-authority-data': 'CA' } }]);
  assert.deepEqual(ours.contexts, [{ name: 'pilab', context: { cluster: 'pilab', user: 'pilab' } }]);
  const existing: KubeConfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'work', cluster: { server: 'https://work:6443' } }, { name: 'pilab', cluster: { server: 'https://old:6443' } }],
    users: [{ name: 'work', user: { token: 't' } }],
    contexts: [{ name: 'work', context: { cluster: 'work', user: 'work' } }],
    'current-context': 'work',
    preferences: {},
  };
  const merged = mergeKubeconfig(existing, ours);
  assert.deepEqual(merged.clusters?.map((c) => [c.name, (c.cluster as { server: string }).server]), [['work', 'https://work:6443'], ['pilab', 'https://10.0.0.1:6443']]);
  assert.deepEqual(merged.contexts?.map((c) => c.name), ['work', 'pilab']);
  assert.deepEqual(merged.users?.[0], { name: 'work', user: { token: 't' } });
  assert.equal(merged['current-context'], 'pilab');
  assert.deepEqual(mergeKubeconfig(merged, ours), merged, 'merging twice changes nothing');

  // lab:down forgets the cluster only where it points at the lab's servers.
  assert.equal(removeCluster(merged, 'pilab', ['https://10.9.9.9:6443']), null, 'same name, other machines: kept');
  assert.equal(removeCluster(merged, 'absent', ['https://10.0.0.1:6443']), null);
  const forgotten = removeCluster(merged, 'pilab', ['https://10.0.0.1:6443'])!;
  assert.deepEqual(forgotten.clusters?.map((c) => c.name), ['work']);
  assert.deepEqual(forgotten.contexts?.map((c) => c.name), ['work']);
  assert.deepEqual(forgotten.users?.map((c) => c.name), ['work']);
  assert.equal(forgotten['current-context'], '');
  assert.equal(removeCluster({ ...merged, 'current-context': 'work' }, 'pilab', ['https://10.0.0.1:6443'])!['current-context'], 'work');
});

test('k3s by userland: a Pi 4 on 32-bit Pi OS (aarch64 kernel, armhf userland) gets k3s-armhf, so its node is arm', () => {
  const pi4 = parseK3sProbe('kernel_arch=aarch64\nuserland_arch=armhf\n');
  assert.equal(pi4.arch, 'armhf');
  assert.equal(pi4.kernelArch, 'aarch64');
  assert.equal(assetFor(pi4.arch).binary, 'k3s-armhf');
  assert.equal(describeArch('aarch64', 'armhf'), 'aarch64 kernel, armhf userland');
  assert.equal(describeArch('armv7l', 'armhf'), 'armv7l/armhf');
  assert.equal(assetFor(parseK3sProbe('kernel_arch=aarch64\nuserland_arch=arm64\n').arch).binary, 'k3s-arm64');
  // Without dpkg (not Debian) the kernel decides.
  assert.equal(k3sArchOf('aarch64', ''), 'arm64');
  assert.equal(k3sArchOf('armv7l', 'unknown'), 'armhf');
});

test('prep steps: swap off now and for good (fstab, dphys-swapfile), iptables-legacy only when too old', () => {
  const base = 'kernel_arch=armv7l\nuserland_arch=armhf\nswap_kb=0\nfstab_swap=0\ndphys_swapfile=\niptables_version=iptables v1.8.9 (nf_tables)\n';
  assert.deepEqual(prepSteps(parseK3sProbe(base)), []);
  const pi = parseK3sProbe('kernel_arch=armv7l\nuserland_arch=armhf\nswap_kb=102396\nfstab_swap=1\ndphys_swapfile=enabled\niptables_version=1.6.0-2\niptables_alternative=/usr/sbin/iptables-nft\n');
  assert.deepEqual(prepSteps(pi).map(([what]) => what), [
    'turn off swap (100 MB)',
    'comment out 1 swap line(s) in /etc/fstab',
    'disable dphys-swapfile',
    'switch iptables 1.6.0 to iptables-legacy',
  ]);
  assert.deepEqual(prepSteps(parseK3sProbe(`${base}dphys_swapfile=disabled\n`)), []);

  // The fstab edit, run for real on a copy: only uncommented swap lines change.
  const dir = mkdtempSync(join(tmpdir(), 'armlab-fstab-'));
  const fstab = join(dir, 'fstab');
  writeFileSync(fstab, 'proc /proc proc defaults 0 0\n/swapfile none swap sw 0 0\n# /old none swap sw 0 0\nPARTUUID=1-02 / ext4 defaults 0 1\n');
  const [, cmd] = prepSteps(pi)[1]!;
  try {
    execFileSync('bash', ['-c', cmd.text.replace('/etc/fstab', fstab)]);
    assert.equal(readFileSync(fstab, 'utf8'), 'proc /proc proc defaults 0 0\n# armlab: no swap for k3s: /swapfile none swap sw 0 0\n# /old none swap sw 0 0\nPARTUUID=1-02 / ext4 defaults 0 1\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('k3s probe, run for real: the token digest a joiner compares, and the cmdline file whole', () => {
  const dir = mkdtempSync(join(tmpdir(), 'armlab-probe-'));
  try {
    const token = join(dir, 'token');
    const cmdline = join(dir, 'cmdline.txt');
    writeFileSync(token, 'K10abc::server:def'); // k3s writes it without a final newline
    writeFileSync(cmdline, 'console=tty1 root=PARTUUID=1-02\nsecond line\n');
    const script = K3S_PROBE.text.replaceAll(SERVER_TOKEN_PATH, token).replaceAll(CMDLINE_FILES[0], cmdline);
    const facts = parseK3sProbe(execFileSync('bash', ['-c', script], { encoding: 'utf8' }));
    assert.equal(facts.serverTokenSha256, digest('K10abc::server:def\n'), 'equal to the digest of the token file a joiner is given');
    assert.equal(facts.cmdline, 'console=tty1 root=PARTUUID=1-02\nsecond line\n');
    assert.equal(withCgroupFlags(facts.cmdline).changed, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
