/**
 * meshnet on a node as armlab judges it (tasks/deploy/cni-node.ts), against
 * what the real meshnetd writes (openconfig/kne third_party/meshnet at 577a223f,
 * daemon/cni/cni.go: flannel's plugin list with {type: meshnet} appended), and
 * the k3s stand-in's CNI layout by version against armlab's reading of it.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chainBase, CNI_NODE_PROBE, cniNodeProblems, parseCniNodeProbe, type CniNodeFacts } from '../../tasks/deploy/cni-node.ts';
import { selectorProblem } from '../../tasks/deploy/deploy.ts';
import { cniBinDirOf } from '../../tasks/deploy/containerd-config.ts';
import { k3sCniBinDirFallback, sortKeys } from '../../tasks/deploy/manifests.ts';
import { standInScript } from '../helpers/k3s-mirror.ts';

const FLANNEL = { name: 'cbr0', cniVersion: '1.0.0', plugins: [{ type: 'flannel', delegate: { hairpinMode: true } }, { type: 'portmap', capabilities: { portMappings: true } }] };
/** What meshnetd's Init writes from FLANNEL: its keys, cniVersion 0.3.0, meshnet appended; tab-indented, keys sorted at every level (a Go map). */
const CHAINED = JSON.stringify(sortKeys({ cniVersion: '0.3.0', name: 'cbr0', plugins: [...FLANNEL.plugins, { ipam: {}, name: 'meshnet', type: 'meshnet' }] }), null, '\t');

const healthy: CniNodeFacts = {
  meshnetConflist: CHAINED,
  configs: { '10-flannel.conflist': JSON.stringify(FLANNEL) },
  linkType: 'VXLAN',
  binDir: '/var/lib/rancher/k3s/data/cni',
  plugin: true,
  meshnetdRunning: true,
};

test('a node where meshnetd chained meshnet after flannel, with the plugin installed and meshnetd running, is healthy', () => {
  assert.deepEqual(cniNodeProblems(healthy, 'VXLAN'), []);
  assert.match(CHAINED, /"delegate": \{\n\t+"hairpinMode": true\n\t+\},\n\t+"type": "flannel"/, 'keys reordered from flannel\'s file, as meshnetd writes them');
  assert.deepEqual(cniNodeProblems({ ...healthy, linkType: null }, 'VXLAN'), [], 'no file: the plugin falls back to VXLAN');
});

test('missing, stale (flannel changed, or meshnetd stopped and left its file), wrong plugin place and wrong link type are each reported', () => {
  assert.deepEqual(cniNodeProblems({ ...healthy, meshnetConflist: null, meshnetdRunning: false }, 'VXLAN'), ['00-meshnet.conflist is missing (meshnetd writes it when it starts; meshnetd is not running here)']);
  const changed = { ...FLANNEL, plugins: [FLANNEL.plugins[0], { type: 'bandwidth' }] };
  assert.deepEqual(cniNodeProblems({ ...healthy, configs: { '10-flannel.conflist': JSON.stringify(changed) } }, 'VXLAN'), [
    "00-meshnet.conflist is stale: its plugins before meshnet are not 10-flannel.conflist's (meshnetd chains at start: restart the meshnet pod on this node)",
  ]);
  assert.deepEqual(cniNodeProblems({ ...healthy, meshnetdRunning: false }, 'VXLAN'), [
    '00-meshnet.conflist is stale: meshnetd is not running here, and a stopped meshnetd leaves its file behind (start the meshnet pod, or remove the file)',
  ]);
  // The old, wrong belief: meshnet first, delegating to flannel.
  const delegating = JSON.stringify({ cniVersion: '1.0.0', name: 'meshnet', plugins: [{ type: 'meshnet', delegate: FLANNEL.plugins[0] }] });
  assert.deepEqual(cniNodeProblems({ ...healthy, meshnetConflist: delegating }, 'VXLAN'), [
    "00-meshnet.conflist is stale: its plugins before meshnet are not 10-flannel.conflist's (meshnetd chains at start: restart the meshnet pod on this node)",
  ]);
  assert.deepEqual(cniNodeProblems({ ...healthy, configs: {} }, 'VXLAN'), ["00-meshnet.conflist chains to no config: k3s's own (10-flannel.conflist) is missing from /var/lib/rancher/k3s/agent/etc/cni/net.d"]);
  assert.deepEqual(cniNodeProblems({ ...healthy, plugin: false }, 'VXLAN'), ["meshnet plugin missing from /var/lib/rancher/k3s/data/cni, where k3s's containerd runs CNI plugins"]);
  assert.deepEqual(cniNodeProblems({ ...healthy, linkType: null }, 'GRPC'), [
    '/etc/cni/net.d/meshnet-inter-node-link-type is missing, the inventory says GRPC: the plugin would use VXLAN (meshnet\'s pod writes it when it starts)',
  ]);
  assert.deepEqual(cniNodeProblems({ ...healthy, linkType: 'GRPC' }, 'GRPC'), []);
  assert.equal(cniNodeProblems({ ...healthy, meshnetConflist: '{' }, 'VXLAN')[0], '00-meshnet.conflist is not a JSON plugin list');
});

test("the config meshnetd chains to: byte-sorted, first valid (a .conflist needs a name and plugins, a .conf a type), meshnet's own skipped by the probe", () => {
  assert.deepEqual(chainBase({ '10-flannel.conflist': JSON.stringify(FLANNEL), '05-broken.conflist': '{"plugins":[]}', '20-bridge.conf': '{"type":"bridge"}' })?.file, '10-flannel.conflist');
  assert.deepEqual(chainBase({ '99-a.conf': '{"type":"bridge","name":"b"}', 'Z.conflist': '{' }), { file: '99-a.conf', plugins: [{ type: 'bridge', name: 'b' }] });
  assert.equal(chainBase({}), null);
});

test('the node probe, run for real by bash in a private mount namespace: k3s folders, the host link type file, containerd config and a running meshnetd', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'armlab-u'));
  const meshnetd = join(dir, 'meshnetd');
  copyFileSync('/bin/sleep', meshnetd);
  // A process named meshnetd, as the probe looks for it in /proc.
  const daemon = spawn(meshnetd, ['60'], { stdio: 'ignore' });
  try {
    const rancher = join(dir, 'rancher');
    const conf = join(rancher, 'k3s/agent/etc/cni/net.d');
    const bin = join(rancher, 'k3s/data/cni');
    const host = join(dir, 'host-net.d');
    for (const d of [conf, bin, join(rancher, 'k3s/agent/etc/containerd'), host]) mkdirSync(d, { recursive: true });
    writeFileSync(join(conf, '10-flannel.conflist'), JSON.stringify(FLANNEL));
    writeFileSync(join(conf, '00-meshnet.conflist'), CHAINED);
    writeFileSync(join(host, 'meshnet-inter-node-link-type'), 'GRPC');
    writeFileSync(join(bin, 'meshnet'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(join(rancher, 'k3s/agent/etc/containerd/config.toml'), `version = 2\n\n[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "/var/lib/rancher/k3s/data/cni"\n  conf_dir = "/var/lib/rancher/k3s/agent/etc/cni/net.d"\n`);
    const script = `mkdir -p /var/lib/rancher /etc/cni/net.d && mount --bind ${rancher} /var/lib/rancher && mount --bind ${host} /etc/cni/net.d && exec bash -c "$1"`;
    const out = execFileSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'probe', CNI_NODE_PROBE.text], { encoding: 'utf8' });
    const facts = parseCniNodeProbe(out);
    assert.deepEqual(facts, { meshnetConflist: CHAINED, configs: { '10-flannel.conflist': JSON.stringify(FLANNEL) }, linkType: 'GRPC', binDir: '/var/lib/rancher/k3s/data/cni', plugin: true, meshnetdRunning: true });
    assert.deepEqual(cniNodeProblems(facts, 'GRPC'), []);
  } finally {
    daemon.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the k3s stand-in lays out the CNI bin folder and containerd config by version as k3s does, and armlab reads the folder it wrote', () => {
  const dir = mkdtempSync(join(tmpdir(), 'armlab-u'));
  try {
    const cases: [string, string, string][] = [
      // version, containerd config file, bin folder (k3s PR #10868 and backports; containerd 2 from v1.31.6/v1.32.2)
      ['v1.28.14+k3s1', 'config.toml', 'data/5t4nd1n/bin'],
      ['v1.28.15+k3s1', 'config.toml', 'data/cni'],
      ['v1.30.5+k3s1', 'config.toml', 'data/5t4nd1n/bin'],
      ['v1.30.6+k3s1', 'config.toml', 'data/cni'],
      ['v1.31.1+k3s1', 'config.toml', 'data/5t4nd1n/bin'],
      ['v1.31.5+k3s1', 'config.toml', 'data/cni'],
      ['v1.31.12+k3s1', 'config-v3.toml', 'data/cni'],
      ['v1.32.1+k3s1', 'config.toml', 'data/cni'],
      ['v1.33.1+k3s1', 'config-v3.toml', 'data/cni'],
    ];
    for (const [version, file, folder] of cases) {
      const data = join(dir, version, 'data');
      const k3s = join(dir, version, 'k3s');
      mkdirSync(join(dir, version));
      writeFileSync(k3s, standInScript(version, 'arm'), { mode: 0o755 });
      execFileSync(k3s, ['stand-in-write-cni'], { env: { ...process.env, ARMLAB_STAND_IN_DATA: data } });
      const config = readFileSync(join(data, 'agent/etc/containerd', file), 'utf8');
      assert.equal(cniBinDirOf(config), join(data, folder), version);
      // The fallback table (render without a node) agrees on which layout a version has.
      assert.equal(k3sCniBinDirFallback(version).endsWith('/data/cni'), folder === 'data/cni', version);
      assert.match(readFileSync(join(data, 'agent/etc/cni/net.d/10-flannel.conflist'), 'utf8'), /"type":"flannel"/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a workload whose nodeSelector matches no node fails at once, naming the nodes and why an armhf node would not be arm', () => {
  const node = (name: string, arch: string) => ({ name, ready: true, version: 'v1.31.12+k3s1', labels: { 'kubernetes.io/arch': arch } });
  assert.equal(selectorProblem({ 'kubernetes.io/arch': 'arm' }, [node('pi1', 'arm'), node('pi2', 'arm64')]), null);
  assert.equal(
    selectorProblem({ 'kubernetes.io/arch': 'arm' }, [node('pi1', 'arm64'), node('pi2', 'arm64')]),
    'no node matches nodeSelector kubernetes.io/arch=arm (pi1 kubernetes.io/arch=arm64; pi2 kubernetes.io/arch=arm64): a node is labelled arm only when it runs k3s-armhf, which k3s:install chooses for armhf userland (check the node with preflight, then re-run k3s:install)',
  );
  assert.match(selectorProblem({ 'kubernetes.io/arch': 'arm' }, [])!, /\(no nodes\)/);
});
