/**
 * The nightly on the demo lab (./lab.ts), once the README's bootstrap
 * (./readme.ts) has run on it: the fixture upstreams are real git repositories
 * (meshnet's and k8s-topo's recipes follow a semver range over their tags), and
 * Debian's mirror is frozen for these tests (tests/helpers/debian-mirror.ts), so
 * that only what a test moves upstream moves. A quiet night, the timer on a
 * host that boots systemd, a new tag, a build that fails, a smoke run that
 * fails, a rollout that times out, images:rollback and the lock.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { dump, load } from 'js-yaml';
import { $, run } from '../../../tasks/core/local.ts';
import { sh, type Command } from '../../../tasks/core/shell.ts';
import type { LockFile } from '../../../tasks/images/lock.ts';
import { loadInventory } from '../../../tasks/inventory/load.ts';
import { processStart } from '../../../tasks/core/run-lock.ts';
import { nightlyPaths } from '../../../tasks/nightly/paths.ts';
import { unitBase } from '../../../tasks/nightly/units.ts';
import { cacheRoot } from '../../../tasks/lab/golden.ts';
import type { NightlyReport } from '../../../tasks/nightly/report.ts';
import { startFrozenDebianMirror, type FrozenMirror } from '../../helpers/debian-mirror.ts';
import { armlab, imageDigestsOnNodes, runOnLabNode, waitFor } from '../../helpers/lab.ts';
import { releaseUpstream, upstreamGit } from '../../helpers/upstream.ts';
import { bootSystemdHost } from '../../helpers/systemd-host.ts';
import { DEMO_NODES as NODES, type DemoLab } from './lab.ts';

const TOPO = 'armlab/k8s-topo:db9411e-1';
const MESHNET = 'armlab/meshnet:kne-577a223-1';
const UPSTREAM = { meshnet: 'https://github.com/openconfig/kne.git', 'k8s-topo': 'https://github.com/networkop/k8s-topo.git' };
type Upstream = keyof typeof UPSTREAM;
const validate = new Ajv2020({ strict: true }).compile(JSON.parse(await readFile(new URL('../../../templates/nightly/report.schema.json', import.meta.url), 'utf8')));

export function nightlyTests(demo: DemoLab): void {
  let debian: FrozenMirror;
  const repos = {} as Record<Upstream, string>;
  const env = () => ({ ...process.env, ARMLAB_IMAGES_CACHE: join(demo.work, 'cache'), KUBECONFIG: join(demo.work, 'kubeconfig'), ARMLAB_DEBIAN_MIRROR: debian.url });
  const nightly = (...args: string[]) => armlab(['nightly', '--inventory', demo.lab.inventory, '--rollout-timeout', '240', ...args], { timeoutMs: 1_800_000, env: env() });
  const report = async (): Promise<NightlyReport> => JSON.parse(await readFile(join(demo.work, 'night.json'), 'utf8')) as NightlyReport;
  const metrics = () => readFile(join(demo.work, 'armlab_nightly.prom'), 'utf8');
  const lock = async () => JSON.parse(await readFile(join(demo.work, 'cache', 'images.lock.json'), 'utf8')) as LockFile;
  const image = (r: NightlyReport, name: string) => r.images.find((i) => i.name === name)!;

  const on = (node: string, command: Command) => runOnLabNode(demo.lab.inventory, node, command);
  const digests = (ref: string) => imageDigestsOnNodes(demo.lab.inventory, NODES, ref);
  const release = (upstream: Upstream, tag: string, changes: Record<string, (text: string) => string>) =>
    releaseUpstream(repos[upstream], tag, changes, upstream === 'meshnet' ? join('third_party', 'meshnet') : '');
  const valid = (r: NightlyReport) => assert.ok(validate(r), JSON.stringify(validate.errors));
  const promtool = async () => {
    const out = await $({ input: await metrics(), nothrow: true })`promtool check metrics`;
    assert.equal(out.exitCode, 0, out.stdout + out.stderr);
  };

  before(async () => {
    // Else each night below would wait out its own timeouts on a lab with no cluster, hiding the first failure.
    if (!demo.bootstrapped) throw new Error("the README's bootstrap of the demo lab did not pass: the nightly's tests need a bootstrapped lab");
    debian = await startFrozenDebianMirror();
    const inventory = demo.lab.inventory;
    // The inventory names where the report and metrics go, as a site would for node_exporter.
    const doc = load(await readFile(inventory, 'utf8')) as { images: { recipes: string; sourceMirrors: Record<string, string> }; nightly?: unknown };
    doc.nightly = { report: join(demo.work, 'night.json'), metrics: join(demo.work, 'armlab_nightly.prom') };
    await writeFile(inventory, `${(await readFile(inventory, 'utf8')).split('\n').filter((l) => l.startsWith('#')).join('\n')}\n${dump(doc)}`);
    // The demo's meshnet and k8s-topo follow ^0.1.0 over their fixture's tags; v0.1.0 is its commit.
    for (const upstream of ['meshnet', 'k8s-topo'] as const) {
      repos[upstream] = doc.images.sourceMirrors[UPSTREAM[upstream]]!;
      assert.equal((load(await readFile(join(doc.images.recipes, upstream, 'image.yaml'), 'utf8')) as { source: { git: { range: string } } }).source.git.range, '^0.1.0');
    }
  });

  after(async () => {
    await debian?.close();
    const inventory = await loadInventory(demo.lab.inventory).catch(() => ({ cluster: `lab-${demo.lab.name}`, nightly: {} }) as never);
    await rm(nightlyPaths(inventory, demo.lab.inventory).state, { recursive: true, force: true }).catch(() => undefined);
  });

  test('nothing changed upstream: nothing built, nothing sent, the report says "no change"', async () => {
    // The seeded images were built before Debian's mirror was frozen for this test: the first night rebuilds
    // what Debian moved since (sid moves several times a day), and nothing else.
    const settle = await nightly();
    assert.equal(settle.code, 0, settle.stdout + settle.stderr);
    for (const i of (await report()).images.filter((x) => x.result !== 'unchanged')) {
      assert.equal(i.result, 'rolled out', `${i.name}: ${i.error ?? ''}`);
      for (const why of i.reasons) assert.match(why, /^(apt |base |build stage )/, `${i.name} rebuilt only because Debian moved`);
    }
    const r = await nightly();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const night = await report();
    valid(night);
    assert.equal(night.outcome, 'no change', r.stdout);
    assert.deepEqual(night.images.map((i) => [i.name, i.result]).sort(), ['base', 'frr', 'golang', 'init-wait', 'k8s-topo', 'meshnet', 'quagga'].map((n) => [n, 'unchanged']));
    assert.deepEqual(night.nodes, [], 'no node was contacted');
    assert.match(r.stdout, /^nightly for lab-\S+ \(\S+\): no change in [\d.]+ s$/m);
    assert.match(await metrics(), /^armlab_nightly_images_rebuilt\{cluster="lab-[^"]+"\} 0$/m);
    assert.match(await metrics(), /^armlab_nightly_failed\{cluster="lab-[^"]+"\} 0$/m);
    await promtool();
  });

  test('nightly:install on a host that boots systemd: the timer is listed with its next run, and starting its service runs a nightly', async () => {
    // This machine's Debian booted by systemd-nspawn (tests/helpers/systemd-host.ts), sharing the lab's folders and this
    // machine's network; armlab is installed there as on a spare Pi: this checkout, run by the shell's node.
    // The checkout is bound in too: systemd-nspawn mounts a fresh /tmp, where a clean clone may live.
    const checkout = fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, '');
    const spare = await bootSystemdHost(join(demo.work, 'spare'), `armlab-${demo.lab.name}-spare`, [demo.work, demo.lab.dir, cacheRoot(), checkout]);
    try {
      const shellEnv = { ARMLAB_IMAGES_CACHE: join(demo.work, 'cache'), ARMLAB_DEBIAN_MIRROR: debian.url, ...(process.env.ARMLAB_CACHE ? { ARMLAB_CACHE: process.env.ARMLAB_CACHE } : {}) };
      const cli = (...args: string[]) => spare.run(['node', '--import', 'tsx', 'tasks/cli.ts', ...args, '--inventory', demo.lab.inventory], { env: shellEnv, cwd: checkout, timeoutMs: 120_000 });
      const base = unitBase((await loadInventory(demo.lab.inventory)).cluster);
      const installed = await cli('nightly:install');
      assert.equal(installed.code, 0, installed.stdout + installed.stderr);
      assert.match(installed.stdout, new RegExp(`^changed: wrote /etc/systemd/system/${base}\\.service, /etc/systemd/system/${base}\\.timer; ${base}\\.timer enabled and started$`, 'm'));
      // systemd's own view: enabled, and a next run (03:00 by default, within the randomized delay).
      const timers = await spare.run(['systemctl', 'list-timers', '--all', '--no-pager', `${base}.timer`]);
      assert.match(timers.stdout, new RegExp(`^\\w{3} \\d{4}-\\d\\d-\\d\\d 0[34]:\\d\\d:\\d\\d UTC .* ${base}\\.timer +${base}\\.service\\s*$`, 'm'), timers.stdout);
      assert.equal((await spare.run(['systemctl', 'is-enabled', `${base}.timer`])).stdout.trim(), 'enabled');
      const again = await cli('nightly:install');
      assert.match(again.stdout, new RegExp(`^unchanged: ${base}\\.timer installed and enabled`, 'm'), again.stdout + again.stderr);

      // What the timer will do at 03:00, now: a oneshot, so start returns when the night is over.
      const startedAt = new Date();
      const started = await spare.run(['systemctl', 'start', `${base}.service`], { timeoutMs: 600_000 });
      assert.equal(started.code, 0, started.stdout + started.stderr + (await spare.run(['journalctl', '-u', `${base}.service`, '--no-pager', '-o', 'cat'])).stdout);
      const shown = await spare.run(['systemctl', 'show', '-p', 'Result', '-p', 'ExecMainStatus', `${base}.service`]);
      assert.match(shown.stdout, /^Result=success$/m);
      assert.match(shown.stdout, /^ExecMainStatus=0$/m);
      const night = await report();
      valid(night);
      assert.ok(new Date(night.startedAt) >= startedAt, `the report is this night's (${night.startedAt})`);
      assert.equal(night.outcome, 'no change');
      const journal = await spare.run(['journalctl', '-u', `${base}.service`, '--no-pager', '-o', 'cat']);
      assert.match(journal.stdout, /^nightly for lab-\S+ \(\S+\): no change in [\d.]+ s$/m, journal.stdout);

      const removed = await cli('nightly:uninstall');
      assert.equal(removed.code, 0, removed.stdout + removed.stderr);
      assert.equal((await spare.run(['systemctl', 'list-timers', '--all', '--no-pager', '--plain', `${base}.timer`])).stdout.includes(base), false);
      assert.equal((await spare.run(['test', '-e', `/etc/systemd/system/${base}.service`])).code, 1);
    } finally {
      await spare.stop();
    }
  });

  // The tags below move meshnet, cross-compiled on the build machine (a rebuild takes seconds), rather than k8s-topo,
  // whose first rebuild in the lab's fresh engine installs its Python packages under armv7 emulation (about 6 minutes).
  let goodMeshnet: string[];
  test('a new tag in meshnet\'s range: meshnet alone rebuilt, smoke-run, imported on every node, its DaemonSet rolled; k8s-topo untouched', async () => {
    const before = { topo: await digests(TOPO), meshnet: await digests(MESHNET) };
    const topoManifest = await on('pi1', sh`sha256sum /var/lib/rancher/k3s/server/manifests/armlab-k8s-topo.yaml`);
    await release('meshnet', 'v0.1.1', { 'daemon/main.go': (s) => s.replace('"meshnetd %s/%s link=%s\\n"', '"meshnetd v0.1.1 %s/%s link=%s\\n"') });
    const r = await nightly();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const night = await report();
    valid(night);
    assert.equal(night.outcome, 'changed');
    const meshnet = image(night, 'meshnet');
    assert.equal(meshnet.result, 'rolled out', JSON.stringify(meshnet));
    assert.match(meshnet.reasons[0] ?? '', new RegExp(`^git ${UPSTREAM.meshnet.replace(/\./g, '\\.')} v0\\.1\\.0 [0-9a-f]{8} → v0\\.1\\.1 [0-9a-f]{8}$`));
    assert.notEqual(meshnet.oldInputHash, meshnet.newInputHash);
    for (const i of night.images.filter((x) => x.name !== 'meshnet')) assert.equal(i.result, 'unchanged', i.name);
    assert.deepEqual(night.nodes.map((n) => [n.name, n.imported]), NODES.map((n) => [n, [MESHNET]]));
    const after = { topo: await digests(TOPO), meshnet: await digests(MESHNET) };
    goodMeshnet = after.meshnet;
    assert.deepEqual(after.topo, before.topo);
    for (const [i, d] of after.meshnet.entries()) assert.notEqual(d, before.meshnet[i], NODES[i]);
    // The DaemonSet's template carries the new build; k8s-topo's manifest is as it was.
    const current = (await lock()).images.meshnet!;
    const manifest = await on('pi1', sh`cat /var/lib/rancher/k3s/server/manifests/armlab-meshnet.yaml`);
    assert.match(manifest, new RegExp(`armlab\\.dev/image-config: '?${current.configDigest}`));
    // …and "rolled out" meant that manifest applied by k3s and rolled out on every node, not the old DaemonSet still complete.
    const live = JSON.parse(await on('pi1', sh`k3s kubectl get daemonset meshnet -n meshnet -o json`)) as { metadata: { annotations: Record<string, string> }; status: { numberReady: number; updatedNumberScheduled: number } };
    assert.equal(live.metadata.annotations['armlab.dev/spec-digest'], /armlab\.dev\/spec-digest: '?(sha256:[0-9a-f]{64})/.exec(manifest)?.[1]);
    assert.deepEqual([live.status.updatedNumberScheduled, live.status.numberReady], [NODES.length, NODES.length]);
    assert.equal(await on('pi1', sh`sha256sum /var/lib/rancher/k3s/server/manifests/armlab-k8s-topo.yaml`), topoManifest);
    assert.match(r.stdout, /^armlab\/meshnet:kne-577a223-1: built \(inputs changed; .*\); smoke run \/bin\/sh -c CNI_COMMAND=VERSION exec \/meshnet: exit 0$/m);
    const kept = (await lock()).history?.meshnet ?? [];
    assert.equal(kept[0]?.configDigest, current.configDigest, 'the new build is the newest kept');
    assert.ok(kept.length >= 2, 'the previous build is kept');
    await promtool();
  });

  test('a build that fails (a patch no longer applies), then a smoke run that fails: every node keeps the last good build; report, metrics and exit say failed', async () => {
    const lastSuccess = (await metrics()).match(/^armlab_nightly_last_success_timestamp_seconds\S* (\S+)$/m)![1];
    const topoBefore = { digests: await digests(TOPO), configDigest: (await lock()).images['k8s-topo']!.configDigest };
    // k8s-topo's patches are checked before anything is built, so this costs no build.
    await release('k8s-topo', 'v0.1.1', { 'bin/k8s-topo': (s) => s.replace('self.image = "alpine"', 'self.image = "alpine:3.20"') });
    const broken = await nightly();
    assert.equal(broken.code, 1, broken.stdout + broken.stderr);
    let night = await report();
    valid(night);
    assert.equal(night.outcome, 'failed');
    assert.equal(image(night, 'k8s-topo').result, 'build failed');
    assert.match(image(night, 'k8s-topo').error ?? '', /001-armlab-images\.patch no longer applies/);
    assert.deepEqual(await digests(TOPO), topoBefore.digests);
    assert.match(await metrics(), /^armlab_nightly_failed\{cluster="lab-[^"]+"\} 1$/m);
    assert.equal((await metrics()).match(/^armlab_nightly_last_success_timestamp_seconds\S* (\S+)$/m)![1], lastSuccess);

    // Upstream withdraws that tag (the range falls back on v0.1.0, the build k8s-topo has), and meshnet's next
    // release breaks the plugin's VERSION command, the meshnet recipe's smoke run.
    await upstreamGit(repos['k8s-topo'], 'tag', '-d', 'v0.1.1');
    const meshnetBefore = (await lock()).images.meshnet!.configDigest;
    await release('meshnet', 'v0.1.2', { 'plugin/meshnet.go': (s) => s.replace('if os.Getenv("CNI_COMMAND") == "VERSION" {\n', 'if os.Getenv("CNI_COMMAND") == "VERSION" {\n\t\tos.Exit(3)\n') });
    const smoke = await nightly();
    assert.equal(smoke.code, 1, smoke.stdout + smoke.stderr);
    night = await report();
    valid(night);
    assert.equal(image(night, 'k8s-topo').result, 'unchanged', 'the withdrawn tag is no longer followed');
    assert.equal(image(night, 'meshnet').result, 'smoke failed');
    assert.match(image(night, 'meshnet').error ?? '', /^smoke run \/bin\/sh -c CNI_COMMAND=VERSION exec \/meshnet: exit 3/);
    assert.deepEqual(await digests(MESHNET), goodMeshnet);
    assert.equal((await lock()).images.meshnet!.configDigest, meshnetBefore, 'the lock is back on the last good build');
    assert.equal((await lock()).images['k8s-topo']!.configDigest, topoBefore.configDigest);
    await promtool();
  });

  test('a rollout that does not finish in time: the new build is put back off every node, the DaemonSet rolled back, the night failed', async () => {
    const good = (await lock()).images.meshnet!.configDigest;
    // Upstream fixes VERSION (and changes meshnetd's message, so that this is not v0.1.1's image again): the build and
    // its smoke run pass; the rollout is given half a second, less than k3s takes to read its manifests folder.
    await release('meshnet', 'v0.1.3', {
      'plugin/meshnet.go': (s) => s.replace('\t\tos.Exit(3)\n', ''),
      'daemon/main.go': (s) => s.replace('"meshnetd v0.1.1 %s/%s link=%s\\n"', '"meshnetd v0.1.3 %s/%s link=%s\\n"'),
    });
    const r = await nightly('--rollout-timeout', '0.5');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const night = await report();
    valid(night);
    assert.equal(night.outcome, 'failed');
    const meshnet = image(night, 'meshnet');
    assert.equal(meshnet.result, 'rolled back', JSON.stringify(meshnet));
    assert.match(meshnet.error ?? '', /^cni:deploy: /);
    assert.match(r.stdout, /^rollout failed \(cni:deploy: .*\): putting meshnet back on their last good builds$/m);
    // Imported, then the last good build imported again, on every node.
    assert.deepEqual(night.nodes.map((n) => [n.name, n.imported, n.rolledBack]), NODES.map((n) => [n, [MESHNET], [MESHNET]]));
    assert.deepEqual(await digests(MESHNET), goodMeshnet);
    assert.equal((await lock()).images.meshnet!.configDigest, good, 'the lock is back on the last good build');
    assert.equal((await lock()).history!.meshnet![0]!.configDigest, good, 'the failed build is not kept as a good one');
    assert.match(await on('pi1', sh`cat /var/lib/rancher/k3s/server/manifests/armlab-meshnet.yaml`), new RegExp(`armlab\\.dev/image-config: '?${good}`));
    assert.match(await metrics(), /^armlab_nightly_failed\{cluster="lab-[^"]+"\} 1$/m);
  });

  test('images:rollback puts the previous build back on every node and rolls its DaemonSet', async () => {
    const kept = (await lock()).history!.meshnet!;
    const r = await armlab(['images:rollback', '--inventory', demo.lab.inventory, '--image', 'meshnet', '--rollout-timeout', '240'], { timeoutMs: 900_000, env: env() });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const back = JSON.parse(await readFile(join(demo.work, 'night.rollback.json'), 'utf8')) as NightlyReport;
    valid(back);
    assert.equal(image(back, 'meshnet').build, kept[1]!.build);
    assert.deepEqual(back.nodes.map((n) => [n.name, n.rolledBack]), NODES.map((n) => [n, [MESHNET]]));
    const now = await digests(MESHNET);
    assert.equal(new Set(now).size, 1);
    for (const [i, d] of now.entries()) assert.notEqual(d, goodMeshnet[i]);
    assert.match(await on('pi1', sh`cat /var/lib/rancher/k3s/server/manifests/armlab-meshnet.yaml`), new RegExp(`armlab\\.dev/image-config: '?${kept[1]!.configDigest}`));
  });

  test('a nightly while another holds the lock exits 3 naming it; once that one is gone, its lock is taken over', async () => {
    const paths = nightlyPaths(await loadInventory(demo.lab.inventory), demo.lab.inventory);
    const holder = spawn('sleep', ['600'], { stdio: 'ignore' });
    try {
      const start = await waitFor('the holder to start', async () => processStart(holder.pid!), 10_000);
      await writeFile(paths.lock, JSON.stringify({ host: (await run`hostname`).trim(), pid: holder.pid, pidStart: start, startedAt: '2026-12-01T03:00:00.000Z' }));
      const second = await nightly('--check');
      assert.equal(second.code, 3, second.stdout + second.stderr);
      assert.match(second.stderr, new RegExp(`another nightly holds ${paths.lock.replace(/\./g, '\\.')}: PID ${holder.pid} on \\S+, started 2026-12-01T03:00:00\\.000Z`));
    } finally {
      holder.kill('SIGKILL');
    }
    await waitFor('the holder to be gone', async () => processStart(holder.pid!) === null, 10_000);
    const taker = await nightly('--check');
    assert.equal(taker.code, 0, taker.stdout + taker.stderr);
    assert.match(taker.stdout, new RegExp(`took over the stale lock of PID ${holder.pid} `));
    const check = JSON.parse(await readFile(join(demo.work, 'night.check.json'), 'utf8')) as NightlyReport;
    valid(check);
    assert.equal(check.tookOverLockFrom?.pid, holder.pid);
  });
}
