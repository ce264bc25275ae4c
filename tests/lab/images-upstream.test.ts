/**
 * The shipped recipes whose upstream lives on GitHub (meshnet, k8s-topo, quagga)
 * built unchanged — same Dockerfile, same patches — from local fixtures with the
 * same layout (tests/fixtures/upstream/), against a real Docker Engine in its own
 * network namespace. golang, the build-machine toolchain meshnet is
 * cross-compiled with, is the real recipe, made from Debian's packages.
 * Then, with those images, `bootstrap` end to end on a fresh 3-host armhf lab
 * (real sshd, systemd and containerd per host; the k3s STAND-IN, whose
 * kubelet runs meshnet's DaemonSet and k8s-topo's Deployment from the
 * side-loaded images), a second bootstrap that changes nothing, and status.
 * (One file, so that the images are built once.)
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { after, before, describe, test } from 'node:test';
import { $, run } from '../../tasks/core/local.ts';
import { sh, type Command } from '../../tasks/core/shell.ts';
import { Connection } from '../../tasks/core/ssh.ts';
import { inspectArchive } from '../../tasks/images/archive.ts';
import { sortKeys } from '../../tasks/deploy/manifests.ts';
import type { LockFile } from '../../tasks/images/lock.ts';
import { loadInventory } from '../../tasks/inventory/load.ts';
import { floatAbiOf } from '../../tasks/preflight/evaluate.ts';
import { startEngine, type TestEngine } from '../helpers/docker.ts';
import { armlab, makeTestDir, startTestLab, waitFor, type TestLab } from '../helpers/lab.ts';
import { fixtureRecipes, mirrorFlags, recipeWithSource } from '../helpers/upstream.ts';

const V1 = 'v1.31.12+k3s1';
const NODES = ['pi1', 'pi2', 'pi3'];
const STEPS = ['preflight', 'k3s:install', 'kubeconfig', 'images:build', 'images:import', 'cni:deploy', 'topo:deploy'];

const QUAGGA = 'armlab/quagga:1.2.4-2';
const TOPO = 'armlab/k8s-topo:db9411e-1';
const INIT_WAIT = 'armlab/init-wait:db9411e-1';
const hex = (b: Buffer) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');

describe('upstream recipes from fixtures (real Docker Engine, BuildKit, cross-compiling and armv7 emulation)', { timeout: 3_600_000 }, () => {
  let engine: TestEngine;
  let work: string;
  let imagesDir: string;
  const env = () => ({ ...process.env, ARMLAB_IMAGES_CACHE: join(work, 'cache') });
  let mirrors: Record<string, string>;
  const build = (images: string) =>
    armlab(['images:build', '--docker-host', engine.host, '--images-dir', imagesDir, '--patches-dir', join(work, 'patches'), ...mirrorFlags(mirrors), '--images', images], { timeoutMs: 2_000_000, env: env() });
  const lock = async () => JSON.parse(await readFile(join(work, 'cache', 'images.lock.json'), 'utf8')) as LockFile;
  const row = (out: string, image: string) => out.split('\n').find((l) => l.startsWith(`${image} `)) ?? '';
  const docker = (args: string[]) => run`/usr/bin/docker -H ${engine.host} ${args}`;
  let tarball: string;

  before(async () => {
    work = await makeTestDir();
    ({ imagesDir, tarball, mirrors } = await fixtureRecipes(work));
    engine = await startEngine();
  });

  after(async () => {
    await engine?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('cold build: golang for the build machine; meshnet, k8s-topo and quagga arm/v7 and locked', async () => {
    // Every shipped recipe (frr too: the demo's bootstrap below builds the whole folder).
    const r = await build('meshnet,k8s-topo,init-wait,quagga,frr');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(row(r.stdout, 'armlab/golang:sid-1'), /\s+built\s+never built; amd64 \(build machine\), \/usr\/bin\/go x86-64, [\d.]+ MB archive$/);
    assert.match(row(r.stdout, 'armlab/meshnet:kne-577a223-1'), /\s+built\s+never built; arm\/v7, \/meshnetd ARM EABI5 hard-float \(Go, GOARM=7\), [\d.]+ MB archive$/);
    for (const image of ['armlab/meshnet:kne-577a223-1', TOPO, INIT_WAIT, QUAGGA]) {
      if (!image.includes('meshnet')) assert.match(row(r.stdout, image), /\s+built\s+never built; arm\/v7, \/\S+ ARM EABI5 hard-float, [\d.]+ MB archive$/);
      const info = await engine.docker.getImage(image).inspect();
      assert.equal(`${info.Os}/${info.Architecture}/${(info as { Variant?: string }).Variant}`, 'linux/arm/v7');
    }
    assert.match(r.stdout, /no sha256 pinned in the recipe; trusting it on first use, pin it with {2}sha256: [0-9a-f]{64}/);
    const l = await lock();
    assert.deepEqual(Object.keys(l.images), ['base', 'frr', 'golang', 'init-wait', 'k8s-topo', 'meshnet', 'quagga']);
    assert.equal(l.images.golang!.target, 'build-machine');
    assert.equal(l.images.golang!.platform, 'linux/amd64');
    assert.equal(l.images.meshnet!.target, 'nodes');
    // Cross-compiled for armv7 by Go: ARM ELF, no float ABI flag (static, no C), GOARM=7 in its build settings.
    for (const bin of ['/meshnet', '/meshnetd']) {
      const file = (await inspectArchive(l.images.meshnet!.archive, bin)).file!;
      assert.deepEqual(floatAbiOf(hex(file.head)), { machine: 'arm', abi: 'unknown' }, bin);
      assert.equal(file.goarm, '7', bin);
    }
  });

  test("meshnet: meshnetd (fixture of kne's) chains meshnet after flannel itself, exits 1 without a config, leaves its files when stopped; the entrypoint keeps the host's link type in step", async () => {
    const image = 'armlab/meshnet:kne-577a223-1';
    const node = join(work, 'node');
    const [conf, bin, host] = ['net.d', 'bin', 'host-net.d'].map((d) => join(node, d)) as [string, string, string];
    for (const d of [conf, bin, host]) await mkdir(d, { recursive: true });
    const mounts = ['-v', `${conf}:/etc/cni/net.d`, '-v', `${bin}:/opt/cni/bin`, '-v', `${host}:/host/etc/cni/net.d`];
    // No CNI config yet (flannel not started): meshnetd's Init fails and it exits 1, as upstream's main does.
    const none = await $`/usr/bin/docker -H ${engine.host} run --rm --network none ${mounts} ${image}`.nothrow();
    assert.equal(none.exitCode, 1, none.stdout + none.stderr);
    assert.match(none.stderr, /Failed to initialise CNI plugin: no net configurations found in \/etc\/cni\/net\.d/);
    const flannel = { name: 'cbr0', cniVersion: '1.0.0', plugins: [{ type: 'flannel', delegate: { hairpinMode: true, forceAddress: true, isDefaultGateway: true } }, { type: 'portmap', capabilities: { portMappings: true } }] };
    await writeFile(join(conf, '10-flannel.conflist'), JSON.stringify(flannel));
    const name = `armlab-meshnetd-${process.pid}`;
    await docker(['run', '-d', '--name', name, '--network', 'none', '-e', 'INTER_NODE_LINK_TYPE=GRPC', ...mounts, image]);
    try {
      const conflist = join(conf, '00-meshnet.conflist');
      const parses = async () => { try { return JSON.parse(await readFile(conflist, 'utf8')) as unknown; } catch { return null; } };
      await waitFor('meshnetd to write 00-meshnet.conflist', parses, 60_000, 200);
      // Init's output: the chained config's own keys, cniVersion 0.3.0, meshnet appended; tab-indented, keys sorted at every level (a Go map), no newline.
      const chained = { cniVersion: '0.3.0', name: 'cbr0', plugins: [...flannel.plugins, { ipam: {}, name: 'meshnet', type: 'meshnet' }] };
      assert.equal(await readFile(conflist, 'utf8'), JSON.stringify(sortKeys(chained), null, '\t'));
      assert.equal(await readFile(join(conf, 'meshnet-inter-node-link-type'), 'utf8'), 'GRPC');
      assert.equal(await readFile(join(host, 'meshnet-inter-node-link-type'), 'utf8'), 'GRPC', 'the entrypoint wrote the host file the plugin reads');
      const plugin = await readFile(join(bin, 'meshnet'));
      assert.equal(floatAbiOf(hex(plugin.subarray(0, 64))).machine, 'arm');
      assert.match(plugin.toString('latin1'), /\tGOARM=7\n/);
    } finally {
      await docker(['rm', '-f', name]);
    }
    // meshnetd handles no signal: stopped, it leaves both files (Cleanup is only deferred), as upstream's does.
    assert.match(await readFile(join(conf, '00-meshnet.conflist'), 'utf8'), /"type": "meshnet"/);
    // The plugin, run where containerd runs it, reads the host's folder.
    const link = await docker(['run', '--rm', '--network', 'none', '-v', `${host}:/etc/cni/net.d`, '--entrypoint', '/meshnet', image]);
    assert.equal(link.split('\n').filter((l) => !l.startsWith('WARNING')).join('\n'), 'meshnet plugin linux/arm link=GRPC');
  });

  test('k8s-topo: its modules import under armv7, --help runs without a cluster, pods point at armlab images, d3 is in the image', async () => {
    const script = [
      'python3 -c "import yaml, netaddr, kubernetes, networkx; from kubernetes import client, config; from networkx.readwrite import json_graph; print(networkx.__version__)"',
      'k8s-topo --help | head -n1',
      "grep -o 'image = \"[^\"]*\"' bin/k8s-topo",
      'grep -o \'src="[^"]*"\' web/index.html',
      "head -c 64 web/d3.v3.min.js | grep -o 'version:\"[0-9.]*\"'",
      'nginx -t 2>&1 | tail -n1',
      'uname -m',
    ].join('; ');
    const out = await docker(['run', '--rm', '--network', 'none', TOPO, 'sh', '-c', script]);
    assert.deepEqual(out.split('\n').filter((l) => !l.startsWith('WARNING')), [
      '2.8.8',
      'usage: k8s-topo [-h] [-d]',
      'image = "armlab/init-wait:db9411e-1"',
      'image = "armlab/base:bookworm-1"',
      'image = "armlab/quagga:1.2.4-2"',
      'image = "armlab/frr:8.4.4-1"',
      'src="d3.v3.min.js"',
      'version:"3.5.16"', // Debian's libjs-d3 3.5.17 names itself so: d3 v3, as the page's script needs
      'nginx: configuration file /etc/nginx/nginx.conf test is successful',
      'armv7l',
    ]);
  });

  test('init-wait: waits until the pod has its interfaces, under dash (the patch replaced bash-only let)', async () => {
    // No network: only lo, so waiting for 1 interface would never end; 0 returns at once.
    const out = await docker(['run', '--rm', '--network', 'none', INIT_WAIT, '0', '0']);
    assert.deepEqual(out.split('\n').filter((l) => !l.startsWith('WARNING')), ['Waiting for all 0 interfaces to be connected', 'Sleeping 0 seconds before boot']);
    const waiting = await $`/usr/bin/docker -H ${engine.host} run --rm --network none --entrypoint timeout ${INIT_WAIT} 15 /entrypoint.sh 1 0`.nothrow();
    assert.equal(waiting.exitCode, 124, 'still waiting for eth0 when stopped');
    assert.doesNotMatch(waiting.stderr, /let: not found/);
  });

  test('quagga: built from the tarball under emulation, runs with only runtime libraries', async () => {
    const out = await docker(['run', '--rm', '--network', 'none', QUAGGA, 'sh', '-c', 'zebra --version; vtysh; id quagga >/dev/null && echo user-ok; command -v gcc || echo no-gcc']);
    assert.deepEqual(out.split('\n').filter((l) => !l.startsWith('WARNING')), ['zebra version fixture (config in /etc/quagga)', 'vtysh with readline 8.2', 'user-ok', 'no-gcc']);
  });

  test('quagga: a router with zebra, ospfd and bgpd and one integrated Quagga.conf comes up with that config (daemons without -f, then vtysh -b)', async () => {
    const conf = join(work, 'qrtr', 'Quagga.conf');
    await mkdir(join(work, 'qrtr'), { recursive: true });
    // Lines in the form real Quagga 1.2.4 shows them back (a by-hand run of the real build: README).
    const config = ['interface eth1', ' description to qrtr-2', ' ip address 12.12.12.1/24', ' ip ospf hello-interval 5', 'router ospf', ' ospf router-id 1.1.1.1', ' network 12.12.12.0/24 area 0.0.0.0', 'router bgp 65001', ' neighbor 12.12.12.2 remote-as 65002'];
    await writeFile(conf, `${config.map((l) => (l.startsWith(' ') ? l : `!\n${l}`)).join('\n')}\n`);
    // What the old start script did: a daemon given the integrated file stops at its first foreign line.
    const withF = await $`/usr/bin/docker -H ${engine.host} run --rm --network none -v ${`${conf}:/etc/quagga/Quagga.conf`} ${QUAGGA} ospfd -f /etc/quagga/Quagga.conf`.nothrow();
    assert.equal(withF.exitCode, 1);
    assert.match(withF.stderr, /\*\*\* Error reading config: There is no such command\.\n\*\*\* Error occurred processing line 4, below:\n ip address 12\.12\.12\.1\/24/);
    const name = `armlab-qrtr-${process.pid}`;
    await docker(['run', '-d', '--name', name, '--network', 'none', '-v', `${conf}:/etc/quagga/Quagga.conf`, QUAGGA]);
    try {
      const running = () => docker(['exec', name, 'vtysh', '-c', 'show running-config']).catch(() => '');
      const shown = await waitFor('the router to show its config', async () => ((await running()).includes('router bgp 65001') ? running() : null), 120_000, 1000);
      assert.match(shown, /^Building configuration\.\.\.\n\nCurrent configuration:\n!\n/);
      for (const line of config) assert.ok(shown.split('\n').includes(line), `${line} in:\n${shown}`);
      assert.match(await docker(['logs', name]), /start-quagga: zebra ospfd bgpd running with \/etc\/quagga\/Quagga\.conf/);
    } finally {
      await docker(['rm', '-f', name]);
    }
  });

  describe("then the README's first command: lab:up --demo and bootstrap on its inventory alone (k3s stand-in release, fixture upstreams, the lab's own engine), with the images built above", () => {
    let lab: TestLab;
    // The images built above are in the cache under the same input hashes: the demo's fixtures are made the same way, byte for byte.
    const labEnv = () => ({ ...env(), ARMLAB_CACHE: join(work, 'k3s-cache'), KUBECONFIG: join(work, 'kubeconfig') });
    const bootstrap = () => armlab(['bootstrap', '--inventory', lab.inventory, '--rollout-timeout', '240'], { timeoutMs: 1_800_000, env: labEnv() });
    const stepRow = (out: string, step: string) => out.slice(out.lastIndexOf('STEP')).split('\n').find((l) => l.startsWith(`${step} `)) ?? '';
    async function on(node: string, command: Command): Promise<string> {
      const conn = await Connection.open((await loadInventory(lab.inventory)).nodes.find((n) => n.name === node)!);
      try {
        return (await conn.run(command)).stdout;
      } finally {
        conn.close();
      }
    }

    before(async () => {
      lab = await startTestLab(NODES.map((name) => ({ name, userland: 'armhf' as const })), { demo: true });
    });

    after(async () => {
      await lab?.down();
    });

    test('lab:up --demo: the inventory points k3s at the stand-in release, the sources at fixtures, builds at the lab\'s engine, and says so; again, nothing changes', async () => {
      const text = await readFile(lab.inventory, 'utf8');
      assert.match(text, /^# --demo: k3s\.mirror serves the armlab k3s STAND-IN \(tests\/k3s-stand-in\/\), NOT k3s/m);
      const inv = await loadInventory(lab.inventory);
      assert.equal(inv.k3s.version, V1);
      assert.match(inv.k3s.mirror ?? '', new RegExp(`^file://${lab.dir}/demo/k3s-release-[0-9a-f]{12}$`));
      assert.equal(inv.images.engine, `unix://${lab.dir}/engine/docker.sock`);
      assert.equal(inv.images.recipes, join(lab.dir, 'demo', 'upstream', 'images'));
      assert.deepEqual(Object.keys(inv.images.sourceMirrors).sort(), Object.keys(mirrors).sort());
      const again = await armlab(['lab:up', '--demo', '--name', lab.name, '--dir', lab.dir, '--inventory-out', lab.inventory]);
      assert.equal(again.code, 0, again.stdout + again.stderr);
      assert.match(again.stdout, /unchanged: lab ".*" is up, nothing to do/);
      assert.match(again.stdout, /^demo: k3s is the armlab k3s STAND-IN \(not k3s\)/m);
      assert.match(again.stdout, /^next: npm run bootstrap -- --inventory /m);
      const plain = await armlab(['lab:up', '--name', lab.name, '--dir', lab.dir, '--nodes', '3', '--inventory-out', lab.inventory]);
      assert.equal(plain.code, 1, plain.stdout + plain.stderr);
      assert.match(plain.stderr, new RegExp(`is already up with other settings \\(3 hosts, --demo\\); remove it first with: npm run lab:down -- --name ${lab.name} --dir ${lab.dir}`));
    });

    test('a fresh lab: every step but images:build (done above) changes something; the rollouts complete; meshnet is in front of flannel on every node', async (t) => {
      const r = await bootstrap();
      assert.equal(r.code, 0, r.stdout + r.stderr);
      t.diagnostic(r.stdout.slice(r.stdout.lastIndexOf('STEP')).trim());
      assert.match(r.stdout, /^bootstrap: ok$/m);
      // preflight only reads; images:build finds the images built above unchanged.
      for (const step of ['preflight', 'images:build']) assert.match(stepRow(r.stdout, step), /\s+ok\s+[\d.]+\s+changed nothing$/, step);
      for (const step of STEPS.filter((s) => !['preflight', 'images:build'].includes(s))) assert.match(stepRow(r.stdout, step), /\s+ok\s+[\d.]+\s+\d+ changed: /, step);
      assert.match(r.stdout, /^pi1\s+cni:deploy\s+changed\s+wrote \S+\/armlab-meshnet\.yaml; DaemonSet meshnet\/meshnet rolled out \(3\/3 ready, 3\/3 updated\)$/m);
      assert.match(r.stdout, /^pi1\s+topo:deploy\s+changed\s+wrote \S+\/armlab-k8s-topo\.yaml; Deployment default\/k8s-topo rolled out \(1\/1 ready, 1\/1 updated\)$/m);
      for (const node of NODES) {
        assert.match(r.stdout, new RegExp(`^${node}\\s+cni:check\\s+unchanged\\s+meshnet chained after 10-flannel\\.conflist; plugin in /var/lib/rancher/k3s/data/cni; meshnetd running$`, 'm'));
        // What meshnet's entrypoint and meshnetd did on the node, through the k3s paths the manifest mapped:
        // the plugin in the folder k3s v1.31.12's containerd config names, meshnetd's chain after flannel.
        const onNode = await on(node, sh`head -c 4 /var/lib/rancher/k3s/data/cni/meshnet | od -An -c | tr -d ' '; cat /var/lib/rancher/k3s/agent/etc/cni/net.d/00-meshnet.conflist`);
        assert.match(onNode, /^177ELF\n/, `${node}: meshnet plugin installed`);
        const plugins = (JSON.parse(onNode.slice(onNode.indexOf('\n') + 1)) as { plugins: { type: string }[] }).plugins.map((p) => p.type);
        assert.deepEqual(plugins, ['flannel', 'portmap', 'bandwidth', 'meshnet']);
      }
      // k8s-topo's nginx serves its page from the pod (the stand-in shares the node's network).
      const get = (path: string) => on('pi1', sh`exec 3<>/dev/tcp/127.0.0.1/80; printf 'GET %s HTTP/1.0\r\n\r\n' ${path} >&3; head -n1 <&3`);
      assert.match(await get('/'), /^HTTP\/1\.1 200 OK/);
      assert.match(await get('/d3.v3.min.js'), /^HTTP\/1\.1 200 OK/, 'd3 served beside the page: it draws offline');
    });

    test('a second bootstrap changes nothing, and each step says so', async (t) => {
      const r = await bootstrap();
      assert.equal(r.code, 0, r.stdout + r.stderr);
      t.diagnostic(r.stdout.slice(r.stdout.lastIndexOf('STEP')).trim()); // where a no-op re-run spends its time
      for (const step of STEPS) assert.match(stepRow(r.stdout, step), /\s+ok\s+[\d.]+\s+changed nothing$/, step);
      assert.match(r.stdout, /^pi1\s+cni:deploy\s+unchanged\s+/m);
    });

    test('status: every node Ready, images present, meshnet chained, its pods running', async () => {
      const s = await armlab(['status', '--inventory', lab.inventory], { timeoutMs: 120_000, env: env() });
      assert.equal(s.code, 0, s.stdout + s.stderr);
      for (const node of NODES) {
        const pods = node === 'pi1' ? 'k8s-topo-pi1 Running, meshnet-pi1 Running' : `meshnet-${node} Running`;
        assert.match(s.stdout, new RegExp(`^${node}\\s+v1\\.31\\.12\\+k3s1 Ready\\s+6/6 present\\s+meshnet chained \\(VXLAN\\)\\s+${pods}$`, 'm'));
      }
      // The cluster's k3s is the stand-in, and status says so, in the binary's own words.
      assert.match(s.stdout, /^pi1 runs k3s v1\.31\.12\+k3s1 \(armlab-stand-in\)$/m);
    });

    test('GRPC links: cni:deploy rolls meshnet again, and on every node the plugin (run on the host, as containerd runs it) reads GRPC', async () => {
      const raw = load(await readFile(lab.inventory, 'utf8')) as Record<string, unknown>;
      await writeFile(lab.inventory, dump({ ...raw, cni: { linkType: 'GRPC' } }));
      const r = await armlab(['cni:deploy', '--inventory', lab.inventory, '--rollout-timeout', '240'], { timeoutMs: 600_000, env: labEnv() });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^pi1\s+cni:deploy\s+changed\s+wrote \S+\/armlab-meshnet\.yaml; DaemonSet meshnet\/meshnet rolled out \(3\/3 ready, 3\/3 updated\)$/m);
      for (const node of NODES) {
        assert.match(r.stdout, new RegExp(`^${node}\\s+cni:check\\s+unchanged\\s+meshnet chained after`, 'm'));
        assert.equal(await on(node, sh`/var/lib/rancher/k3s/data/cni/meshnet`), 'meshnet plugin linux/arm link=GRPC\n');
      }
    });

    test('meshnet gone from the cluster: status reports the file it left on every node as stale, not healthy', async () => {
      // The DaemonSet deleted: the stand-in's kubelet stops pods whose workload is gone, as kubelet does.
      await on('pi1', sh`rm /var/lib/rancher/k3s/server/manifests/armlab-meshnet.yaml`);
      for (const node of NODES) {
        await waitFor(`meshnetd to stop on ${node}`, async () => (await on(node, sh`for c in /proc/[0-9]*/comm; do read -r n 2>/dev/null < "$c" && [ "$n" = meshnetd ] && echo running; done; true`)) === '', 120_000, 1000);
      }
      const s = await armlab(['status', '--inventory', lab.inventory], { timeoutMs: 120_000, env: env() });
      for (const node of NODES) {
        assert.match(s.stdout, new RegExp(`^${node}\\s.*00-meshnet\\.conflist is stale: meshnetd is not running here, and a stopped meshnetd leaves its file behind`, 'm'));
      }
    });

    test('lab:down removes the demo with the lab: its engine stopped, its namespace and folder gone', async () => {
      const state = JSON.parse(await readFile(join(lab.dir, 'lab.json'), 'utf8')) as { demo: { enginePid: number } };
      const kubeconfig = join(work, 'kubeconfig');
      assert.match(await readFile(kubeconfig, 'utf8'), new RegExp(`^current-context: lab-${lab.name}$`, 'm'));
      // lab:down reads the kubeconfig's path as kubectl does; this process has none set.
      process.env['KUBECONFIG'] = kubeconfig;
      const removed = await lab.down().finally(() => delete process.env['KUBECONFIG']);
      assert.ok(removed.includes(`the lab's Docker Engine (pid ${state.demo.enginePid})`), removed.join('\n'));
      assert.ok(removed.includes(`context lab-${lab.name} in ${kubeconfig}`), removed.join('\n'));
      assert.doesNotMatch(await readFile(kubeconfig, 'utf8'), new RegExp(`lab-${lab.name}`), 'its context, cluster and user gone');
      assert.ok(!existsSync(`/proc/${state.demo.enginePid}`), 'dockerd stopped');
      assert.ok(!(await run`ip netns list`).includes(`armlab-${lab.name}-docker`), 'its namespace deleted');
      assert.ok(!existsSync(lab.dir), 'the release, fixtures and engine data went with the lab folder');
    });
  });

  test('second build: all skipped; a tarball that no longer matches its pinned sha256 stops the run before any build', async () => {
    const again = await build('meshnet,k8s-topo,init-wait,quagga,frr');
    assert.equal(again.code, 0, again.stdout);
    for (const image of ['armlab/golang:sid-1', 'armlab/meshnet:kne-577a223-1', TOPO, INIT_WAIT, QUAGGA, 'armlab/frr:8.4.4-1']) assert.match(row(again.stdout, image), /\s+unchanged\s+/);
    const before = await lock();
    const pinned = '0'.repeat(64);
    await recipeWithSource(imagesDir, 'quagga', (d) => Object.assign(d.source.tarball!, { url: tarball, sha256: pinned }));
    const r = await build('quagga');
    assert.equal(r.code, 1);
    assert.match(r.stdout, new RegExp(`^images:build: nothing built: ${tarball.replace(/[.]/g, '\\.')}: sha256 is [0-9a-f]{64}, but the recipe pins ${pinned}; refusing an upstream tarball that changed$`, 'm'));
    assert.doesNotMatch(r.stdout, /^building /m);
    assert.deepEqual(await lock(), before);
  });
});
