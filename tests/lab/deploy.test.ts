/**
 * cni:deploy and topo:deploy against a 3-host armhf lab with the k3s STAND-IN,
 * with no image or fixture images that cannot start: the manifests landing
 * (exact content, written only when different), the bounded rollout wait with
 * its diagnosis, bootstrap --from and status. Successful rollouts and the CNI
 * check on real meshnet images are in images-upstream.test.ts.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dump } from 'js-yaml';
import { sh, type Command } from '../../tasks/core/shell.ts';
import { Connection } from '../../tasks/core/ssh.ts';
import { recipeImages } from '../../tasks/deploy/command.ts';
import { COMPONENTS, renderComponent } from '../../tasks/deploy/deploy.ts';
import { writeLock } from '../../tasks/images/lock.ts';
import { loadInventory } from '../../tasks/inventory/load.ts';
import { writeFixtureArchive } from '../helpers/archives.ts';
import { startMirror, useMirror, type Mirror } from '../helpers/k3s-mirror.ts';
import { armlab, startTestLab, type TestLab } from '../helpers/lab.ts';

const V1 = 'v1.31.12+k3s1';

describe('cni:deploy and topo:deploy (lab of 3 armhf hosts, k3s stand-in)', { timeout: 900_000 }, () => {
  let lab: TestLab;
  let mirror: Mirror;
  let inv: string;
  let raw: Record<string, unknown>;
  const env = () => ({ ...process.env, ARMLAB_CACHE: join(lab.dir, 'cache') });
  // Longer than k3s's 15 s between reads of its manifests folder (the stand-in's too), and the kubelets' first look.
  const deploy = (task: string, args: string[] = []) => armlab([task, '--inventory', inv, '--rollout-timeout', '30', ...args], { timeoutMs: 180_000, env: env() });
  async function onServer(command: Command): Promise<string> {
    const conn = await Connection.open((await loadInventory(inv)).nodes[0]!);
    try {
      return (await conn.run(command)).stdout;
    } finally {
      conn.close();
    }
  }
  // No lock in the deploys' cache (env()): no build digests in the pod templates.
  const imageNames = async () => {
    const { meshnet, topo } = await recipeImages('images');
    return { meshnet, topo };
  };
  const expected = async (which: 'cni' | 'topo') => renderComponent(COMPONENTS[which], await loadInventory(inv), { k3sVersion: V1, cniBinDir: '/var/lib/rancher/k3s/data/cni' }, await imageNames());

  before(async () => {
    lab = await startTestLab([
      { name: 'pi1', userland: 'armhf' },
      { name: 'pi2', userland: 'armhf' },
      { name: 'pi3', userland: 'armhf' },
    ]);
    mirror = await startMirror(join(lab.dir, 'mirror'), [V1], { stable: V1 });
    inv = lab.inventory;
    raw = await useMirror(inv, mirror, V1);
    const installed = await armlab(['k3s:install', '--inventory', inv], { timeoutMs: 600_000, env: env() });
    assert.equal(installed.code, 0, installed.stdout + installed.stderr);
  });

  after(async () => {
    await mirror?.close();
    await lab?.down();
  });

  test('cni:deploy: the manifests land with exact content; the rollout wait is bounded and ends with a diagnosis', async () => {
    const r = await deploy('cni:deploy');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^pi1\s+cni:deploy\s+failed\s+DaemonSet meshnet\/meshnet not rolled out after 30s: 0\/3 ready, [0-3]\/3 updated; \/var\/lib\/rancher\/k3s\/server\/manifests\/armlab-meshnet\.yaml written$/m);
    // No image imported yet: the pods cannot start, and the diagnosis says why.
    assert.match(r.stdout, /^cni:deploy: diagnosis from pi1\n== pods in meshnet\nNAME\tREADY\tSTATUS\tRESTARTS\tNODE\n(meshnet-pi[1-3]\t0\/1\tErrImagePull\t0\tpi[1-3]\n)+== recent events in meshnet\n/m);
    assert.match(r.stdout, /^Warning\tErrImagePull\tpod\/meshnet-pi[1-3]\timage docker\.io\/armlab\/meshnet:kne-577a223-1 is not in containerd \(k8s\.io\) and the stand-in has no registry to pull from$/m);
    assert.match(r.stdout, /== log tail of daemonset\/meshnet\n/);
    assert.doesNotMatch(r.stdout, /cni:check/, 'no node check before a rollout');
    const onNode = await onServer(sh`stat -c '%a' /var/lib/rancher/k3s/server/manifests/armlab-meshnet.yaml; cat /var/lib/rancher/k3s/server/manifests/armlab-meshnet.yaml`);
    const [mode, ...text] = onNode.split('\n');
    assert.equal(mode, '600');
    assert.equal(text.join('\n'), await expected('cni'));
    assert.match(text.join('\n'), /image: armlab\/meshnet:kne-577a223-1\n\s+imagePullPolicy: IfNotPresent/);
    const rendered = await armlab(['render', '--inventory', inv], { env: env() });
    assert.ok(rendered.stdout.includes(text.join('\n')), 'render prints what cni:deploy wrote');
  });

  test('a re-run writes nothing; --check agrees; a changed link type is written again', async () => {
    const stamp = sh`stat -c %Y.%i /var/lib/rancher/k3s/server/manifests/armlab-meshnet.yaml`;
    const before = await onServer(stamp);
    const again = await deploy('cni:deploy');
    assert.match(again.stdout, /^pi1\s+cni:deploy\s+failed\s+DaemonSet meshnet\/meshnet not rolled out after 30s: 0\/3 ready, 3\/3 updated$/m);
    assert.equal(await onServer(stamp), before, 'the file was not rewritten');
    const check = await deploy('cni:deploy', ['--check']);
    assert.equal(check.code, 0, check.stdout);
    assert.match(check.stdout, /^pi1\s+cni:deploy\s+unchanged\s+\/var\/lib\/rancher\/k3s\/server\/manifests\/armlab-meshnet\.yaml up to date$/m);

    raw.cni = { linkType: 'GRPC' };
    await writeFile(inv, dump(raw));
    const would = await deploy('cni:deploy', ['--check']);
    assert.match(would.stdout, /^pi1\s+cni:deploy\s+would change\s+would write \/var\/lib\/rancher\/k3s\/server\/manifests\/armlab-meshnet\.yaml$/m);
    await deploy('cni:deploy');
    const text = await onServer(sh`cat /var/lib/rancher/k3s/server/manifests/armlab-meshnet.yaml`);
    assert.equal(text, await expected('cni'));
    assert.match(text, /name: gwirekobjs\.networkop\.co\.uk/);
    assert.match(text, /name: INTER_NODE_LINK_TYPE\n\s+value: GRPC/);
  });

  test('topo:deploy: the Deployment, RBAC and NodePort service land; the wait names the Deployment', async () => {
    const r = await deploy('topo:deploy');
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^pi1\s+topo:deploy\s+failed\s+Deployment default\/k8s-topo not rolled out after 30s: 0\/1 ready, [01]\/1 updated; \/var\/lib\/rancher\/k3s\/server\/manifests\/armlab-k8s-topo\.yaml written$/m);
    assert.equal(await onServer(sh`cat /var/lib/rancher/k3s/server/manifests/armlab-k8s-topo.yaml`), await expected('topo'));
  });

  test('bootstrap --from images:import: imports, then stops at the first failing step and says how to resume', async () => {
    const cache = join(lab.dir, 'images-cache');
    const images = await imageNames();
    const entries = await Promise.all(
      Object.values(images).map((image) => {
        const [name, tag] = image.slice('armlab/'.length).split(':') as [string, string];
        return writeFixtureArchive({ name, tag, platform: 'linux/arm/v7', bytes: 2e6 }, join(cache, 'archives', `${name}.tar`));
      }),
    );
    await writeLock({ version: 1, images: Object.fromEntries(entries.map((e) => [e.name, e])) }, join(cache, 'images.lock.json'));
    // Long enough for k3s to apply the manifest (15 s) and three emulated kubelets to start the pods, see them die and back off.
    const r = await armlab(['bootstrap', '--inventory', inv, '--from', 'images:import', '--rollout-timeout', '60'], { timeoutMs: 900_000, env: { ...env(), ARMLAB_IMAGES_CACHE: cache } });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^==> images:import$/m);
    assert.match(r.stdout, /^pi2\s+images:import\s+changed\s+imported 2, skipped 0, purged 0, failed 0$/m);
    assert.match(r.stdout, /^pi3\s+images:import\s+changed\s+imported 2, skipped 0, purged 0, failed 0$/m);
    assert.match(r.stdout, /^==> cni:deploy$/m);
    assert.doesNotMatch(r.stdout, /^==> (preflight|k3s:install|topo:deploy)$/m);
    const table = r.stdout.slice(r.stdout.lastIndexOf('STEP'));
    for (const step of ['preflight', 'k3s:install', 'kubeconfig', 'images:build']) assert.match(table, new RegExp(`^${step}\\s+skipped\\s+-\\s+--from$`, 'm'));
    assert.match(table, /^images:import\s+ok\s+[\d.]+\s+3 changed: images:import on pi1, images:import on pi2, images:import on pi3$/m);
    // The fixture images are there now, but their cmd (/bin/sh) is not in them: the pods crash and back off.
    // Written again: the lock's build of meshnet now stands in the pod template (armlab.dev/image-config).
    assert.match(r.stdout, /^pi1\s+cni:deploy\s+failed\s+DaemonSet meshnet\/meshnet not rolled out after 60s: 0\/3 ready, 3\/3 updated; \/var\/lib\/rancher\/k3s\/server\/manifests\/armlab-meshnet\.yaml written$/m);
    assert.match(await onServer(sh`cat /var/lib/rancher/k3s/server/manifests/armlab-meshnet.yaml`), new RegExp(`armlab\\.dev/image-config: '?${entries.find((e) => e.name === 'meshnet')!.configDigest}`));
    assert.match(r.stdout, /^Warning\tCrashLoopBackOff\tpod\/meshnet-pi[1-3]\tback-off \d+s restarting failed container of pod meshnet\/meshnet-pi[1-3] \(unshare: failed to execute \/bin\/sh: No such file or directory\)$/m);
    assert.match(table, /^cni:deploy\s+FAILED\s+[\d.]+\s+exit 1; fix it, then resume with --from cni:deploy$/m);
    assert.match(table, /^topo:deploy\s+not run\s+-\s+cni:deploy failed$/m);
    assert.match(r.stdout, /^bootstrap: FAILED at cni:deploy$/m);

    // Every pod crash-loops from its first failed start on (it never runs, so it never
    // shows Running again): wait, bounded, until status shows that of all of them.
    const rows = ['pi1', 'pi2', 'pi3'].map((node) => {
      // As kubectl's STATUS column has it: the crash-looping pods' reason, not their flipping phase.
      const pods = node === 'pi1' ? 'k8s-topo-pi1 CrashLoopBackOff, meshnet-pi1 CrashLoopBackOff' : `meshnet-${node} CrashLoopBackOff`;
      // Nothing of meshnet on the node (its pod never ran), and the inventory now asks for GRPC: each said.
      const cni = [
        "00-meshnet\\.conflist is missing \\(meshnetd writes it when it starts; meshnetd is not running here\\)",
        "meshnet plugin missing from /var/lib/rancher/k3s/data/cni, where k3s's containerd runs CNI plugins",
        "/etc/cni/net\\.d/meshnet-inter-node-link-type is missing, the inventory says GRPC: the plugin would use VXLAN \\(meshnet's pod writes it when it starts\\)",
      ].join('; ');
      return new RegExp(`^${node}\\s+v1\\.31\\.12\\+k3s1 Ready\\s+2/2 present\\s+${cni}\\s+${pods}$`, 'm');
    });
    let status = { code: null as number | null, stdout: '', stderr: '' };
    const deadline = Date.now() + 180_000;
    do {
      status = await armlab(['status', '--inventory', inv], { timeoutMs: 120_000, env: { ...env(), ARMLAB_IMAGES_CACHE: cache } });
      if (status.code === 0 && rows.every((row) => row.test(status.stdout))) break;
      await new Promise((r) => setTimeout(r, 2000));
    } while (Date.now() < deadline);
    assert.equal(status.code, 0, status.stdout + status.stderr);
    for (const row of rows) assert.match(status.stdout, row);
  });
});
