/**
 * The README's first command, on the demo lab (./lab.ts): `lab:up --demo`
 * again, then `bootstrap` on that inventory alone, end to end; a second
 * bootstrap that changes nothing; status. After the nightly's tests
 * (./nightly.ts) on the same lab: GRPC links, meshnet removed, lab:down.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { dump, load } from 'js-yaml';
import { run } from '../../../tasks/core/local.ts';
import { sh, type Command } from '../../../tasks/core/shell.ts';
import { loadInventory } from '../../../tasks/inventory/load.ts';
import { armlab, runOnLabNode, waitFor } from '../../helpers/lab.ts';
import { DEMO_NODES as NODES, type DemoLab } from './lab.ts';

const V1 = 'v1.31.12+k3s1';
const STEPS = ['preflight', 'k3s:install', 'kubeconfig', 'images:build', 'images:import', 'cni:deploy', 'topo:deploy'];
const UPSTREAMS = ['https://github.com/Quagga/quagga/releases/download/quagga-1.2.4/quagga-1.2.4.tar.gz', 'https://github.com/networkop/k8s-topo.git', 'https://github.com/openconfig/kne.git'];

function helpers(demo: DemoLab) {
  const env = () => ({ ...process.env, ARMLAB_IMAGES_CACHE: join(demo.work, 'cache') });
  const labEnv = () => ({ ...env(), KUBECONFIG: join(demo.work, 'kubeconfig') });
  const on = (node: string, command: Command) => runOnLabNode(demo.lab.inventory, node, command);
  return { env, labEnv, on };
}

const stepRow = (out: string, step: string) => out.slice(out.lastIndexOf('STEP')).split('\n').find((l) => l.startsWith(`${step} `)) ?? '';

export function readmeBootstrapTests(demo: DemoLab): void {
  const { env, labEnv, on } = helpers(demo);
  const bootstrap = () => armlab(['bootstrap', '--inventory', demo.lab.inventory, '--rollout-timeout', '240'], { timeoutMs: 1_800_000, env: labEnv() });

  test('lab:up --demo: the inventory points k3s at the stand-in release, the sources at fixtures, builds at the lab\'s engine, and says so; again, nothing changes', async () => {
    const text = await readFile(demo.lab.inventory, 'utf8');
    assert.match(text, /^# --demo: k3s\.mirror serves the armlab k3s STAND-IN \(tests\/k3s-stand-in\/\), NOT k3s/m);
    const inv = await loadInventory(demo.lab.inventory);
    assert.equal(inv.k3s.version, V1);
    assert.match(inv.k3s.mirror ?? '', new RegExp(`^file://${demo.lab.dir}/demo/k3s-release-[0-9a-f]{12}$`));
    assert.equal(inv.images.engine, `unix://${demo.lab.dir}/engine/docker.sock`);
    assert.equal(inv.images.recipes, join(demo.lab.dir, 'demo', 'upstream', 'images'));
    assert.deepEqual(Object.keys(inv.images.sourceMirrors).sort(), UPSTREAMS);
    const again = await armlab(['lab:up', '--demo', '--name', demo.lab.name, '--dir', demo.lab.dir, '--inventory-out', demo.lab.inventory]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /unchanged: lab ".*" is up, nothing to do/);
    assert.match(again.stdout, /^demo: k3s is the armlab k3s STAND-IN \(not k3s\)/m);
    assert.match(again.stdout, /^next: npm run bootstrap -- --inventory /m);
    const plain = await armlab(['lab:up', '--name', demo.lab.name, '--dir', demo.lab.dir, '--nodes', '3', '--inventory-out', demo.lab.inventory]);
    assert.equal(plain.code, 1, plain.stdout + plain.stderr);
    assert.match(plain.stderr, new RegExp(`is already up with other settings \\(3 hosts, --demo\\); remove it first with: npm run lab:down -- --name ${demo.lab.name} --dir ${demo.lab.dir}`));
  });

  test('a fresh lab: every step changes something (images:build only when no built images were seeded); the rollouts complete; meshnet is in front of flannel on every node', async (t) => {
    const r = await bootstrap();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    t.diagnostic(r.stdout.slice(r.stdout.lastIndexOf('STEP')).trim());
    assert.match(r.stdout, /^bootstrap: ok$/m);
    demo.bootstrapped = true;
    // preflight only reads; images:build finds the seeded images unchanged (same input hashes), else builds them.
    const unchanged = demo.seeded ? ['preflight', 'images:build'] : ['preflight'];
    for (const step of unchanged) assert.match(stepRow(r.stdout, step), /\s+ok\s+[\d.]+\s+changed nothing$/, step);
    for (const step of STEPS.filter((s) => !unchanged.includes(s))) assert.match(stepRow(r.stdout, step), /\s+ok\s+[\d.]+\s+\d+ changed: /, step);
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
    const s = await armlab(['status', '--inventory', demo.lab.inventory], { timeoutMs: 120_000, env: env() });
    assert.equal(s.code, 0, s.stdout + s.stderr);
    for (const node of NODES) {
      const pods = node === 'pi1' ? 'k8s-topo-pi1 Running, meshnet-pi1 Running' : `meshnet-${node} Running`;
      assert.match(s.stdout, new RegExp(`^${node}\\s+v1\\.31\\.12\\+k3s1 Ready\\s+6/6 present\\s+meshnet chained \\(VXLAN\\)\\s+${pods}$`, 'm'));
    }
    // The cluster's k3s is the stand-in, and status says so, in the binary's own words.
    assert.match(s.stdout, /^pi1 runs k3s v1\.31\.12\+k3s1 \(armlab-stand-in\)$/m);
  });
}

export function readmeEndTests(demo: DemoLab): void {
  const { env, labEnv, on } = helpers(demo);

  test('GRPC links: cni:deploy rolls meshnet again, and on every node the plugin (run on the host, as containerd runs it) reads GRPC', async () => {
    const raw = load(await readFile(demo.lab.inventory, 'utf8')) as Record<string, unknown>;
    await writeFile(demo.lab.inventory, dump({ ...raw, cni: { linkType: 'GRPC' } }));
    const r = await armlab(['cni:deploy', '--inventory', demo.lab.inventory, '--rollout-timeout', '240'], { timeoutMs: 600_000, env: labEnv() });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^pi1\s+cni:deploy\s+changed\s+wrote \S+\/armlab-meshnet\.yaml; DaemonSet meshnet\/meshnet rolled out \(3\/3 ready, 3\/3 updated\)$/m);
    for (const node of NODES) {
      assert.match(r.stdout, new RegExp(`^${node}\\s+cni:check\\s+unchanged\\s+meshnet chained after`, 'm'));
      assert.equal(await on(node, sh`/var/lib/rancher/k3s/data/cni/meshnet`), 'meshnet plugin linux/arm link=GRPC\n');
    }
  });

  test('meshnet gone from the cluster: status reports the file it left on every node as stale, not healthy', async () => {
    // The DaemonSet deleted (removing the file alone would not: k3s leaves applied objects in place), and its
    // manifest removed so that k3s does not apply it again at its next start. The stand-in's kubelet stops
    // pods whose workload is gone, as kubelet does.
    await on('pi1', sh`k3s kubectl delete -f /var/lib/rancher/k3s/server/manifests/armlab-meshnet.yaml && rm /var/lib/rancher/k3s/server/manifests/armlab-meshnet.yaml`);
    for (const node of NODES) {
      await waitFor(`meshnetd to stop on ${node}`, async () => (await on(node, sh`for c in /proc/[0-9]*/comm; do read -r n 2>/dev/null < "$c" && [ "$n" = meshnetd ] && echo running; done; true`)) === '', 120_000, 1000);
    }
    const s = await armlab(['status', '--inventory', demo.lab.inventory], { timeoutMs: 120_000, env: env() });
    for (const node of NODES) {
      assert.match(s.stdout, new RegExp(`^${node}\\s.*00-meshnet\\.conflist is stale: meshnetd is not running here, and a stopped meshnetd leaves its file behind`, 'm'));
    }
  });

  test('lab:down removes the demo with the lab: its engine stopped, its namespace and folder gone', async () => {
    const state = JSON.parse(await readFile(join(demo.lab.dir, 'lab.json'), 'utf8')) as { demo: { enginePid: number } };
    const kubeconfig = join(demo.work, 'kubeconfig');
    assert.match(await readFile(kubeconfig, 'utf8'), new RegExp(`^current-context: lab-${demo.lab.name}$`, 'm'));
    // lab:down reads the kubeconfig's path as kubectl does; this process has none set.
    process.env['KUBECONFIG'] = kubeconfig;
    const removed = await demo.lab.down().finally(() => delete process.env['KUBECONFIG']);
    assert.ok(removed.includes(`the lab's Docker Engine (pid ${state.demo.enginePid})`), removed.join('\n'));
    assert.ok(removed.includes(`context lab-${demo.lab.name} in ${kubeconfig}`), removed.join('\n'));
    assert.doesNotMatch(await readFile(kubeconfig, 'utf8'), new RegExp(`lab-${demo.lab.name}`), 'its context, cluster and user gone');
    assert.ok(!existsSync(`/proc/${state.demo.enginePid}`), 'dockerd stopped');
    assert.ok(!(await run`ip netns list`).includes(`armlab-${demo.lab.name}-docker`), 'its namespace deleted');
    assert.ok(!existsSync(demo.lab.dir), 'the release, fixtures and engine data went with the lab folder');
  });
}
