/**
 * The shipped recipes whose upstream lives on GitHub (meshnet, k8s-topo, quagga)
 * built unchanged — same Dockerfile, same patches — from local fixtures with the
 * same layout (tests/fixtures/upstream/), against a real Docker Engine in its own
 * network namespace. golang, the build-machine toolchain meshnet is
 * cross-compiled with, is the real recipe, made from Debian's packages.
 * The images are published for the later test file readme-demo (the demo and the nightly on it),
 * which starts from them instead of building them again.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { $, run } from '../../tasks/core/local.ts';
import { inspectArchive } from '../../tasks/images/archive.ts';
import { sortKeys } from '../../tasks/deploy/manifests.ts';
import type { LockFile } from '../../tasks/images/lock.ts';
import { smokeRun } from '../../tasks/nightly/smoke.ts';
import { loadRecipe } from '../../tasks/images/recipe.ts';
import { floatAbiOf } from '../../tasks/preflight/evaluate.ts';
import { startEngine, type TestEngine } from '../helpers/docker.ts';
import { publishFixtureImages } from '../helpers/shared-images.ts';
import { armlab, makeTestDir, waitFor } from '../helpers/lab.ts';
import { fixtureRecipes, mirrorFlags, recipeWithSource } from '../helpers/upstream.ts';

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
    // The nightly test starts from these images rather than building them all again.
    if (work) await publishFixtureImages(join(work, 'cache')).catch(() => undefined);
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('cold build: golang for the build machine; meshnet, k8s-topo and quagga arm/v7 and locked', async () => {
    // Every shipped recipe (frr too: the demo and nightly tests start from these images, published at the end).
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

  test('every shipped recipe declares a smoke command, and it passes on the build (as the nightly runs it)', async () => {
    for (const name of ['base', 'golang', 'frr', 'meshnet', 'k8s-topo', 'init-wait', 'quagga']) {
      const recipe = await loadRecipe(imagesDir, join(work, 'patches'), name);
      assert.ok(recipe.verify.smoke, `images/${name}/image.yaml declares verify.smoke`);
      const platform = recipe.target === 'build-machine' ? 'linux/amd64' : 'linux/arm/v7';
      const smoke = await smokeRun(engine.docker, recipe, platform);
      assert.ok(smoke.ok, `${name}: ${smoke.detail}`);
    }
    // A failing command is a failed smoke run, with what it printed.
    const failing = await smokeRun(engine.docker, { ...(await loadRecipe(imagesDir, join(work, 'patches'), 'quagga')), verify: { binary: '/x', smoke: ['sh', '-c', 'echo broken >&2; exit 4'] } }, 'linux/arm/v7');
    assert.deepEqual(failing, { ok: false, detail: "sh -c echo broken >&2; exit 4: exit 4 (broken)" });
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

  test('k8s-topo: the Python modules were byte-compiled once after the install; Python finds every .pyc fresh; py3compile is back', async () => {
    // compileall says "Compiling ..." for each module whose .pyc is missing or stale (by Python's own check).
    const script = [
      'python3 -m compileall /usr/lib/python3/dist-packages /usr/share/python3 /usr/lib/python3.11 | grep -c ^Compiling || true',
      'ls /usr/lib/python3/dist-packages/kubernetes/client/models/__pycache__ | grep -c "cpython-311.pyc$"',
      'dpkg-divert --list | grep -c py3compile || true',
      'head -n1 /usr/bin/py3compile',
    ].join('; ');
    const [stale, models, diversions, shebang] = (await docker(['run', '--rm', '--network', 'none', TOPO, 'sh', '-c', script])).split('\n').filter((l) => !l.startsWith('WARNING'));
    assert.equal(stale, '0', 'no module left to compile');
    assert.ok(Number(models) > 500, `kubernetes' models compiled (${models})`);
    assert.equal(diversions, '0', 'the diversion is gone');
    assert.equal(shebang, '#! /usr/bin/python3', 'the real py3compile, not the stand-in');
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
