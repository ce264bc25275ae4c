/**
 * Benchmark (not a test): images:import against the ways it replaces, all
 * measured in this run on one emulated lab — 3 hosts with amd64 userland (so
 * links, not the emulator, are the bottleneck), each link shaped to a Pi 3B+
 * (240 Mbit/s), this machine's uplink to the LAN to 1 Gbit/s, 3 images of
 * about 50 MB, half random. Between methods every node's images are removed
 * (with containerd's garbage collection) so each starts from the same state.
 *   (a) manual: scp every tarball to every node, one after another, then
 *       `k3s ctr images import` each file on each node in a loop;
 *   (p) bare pipe: `ssh node 'k3s ctr … import -' < file`, all nodes at once;
 *   (b) images:import, first run;  (c) images:import again, nothing changed —
 *       timed in this process (armlab's own work) and as a CLI run (plus Node start-up);
 *   (g) images:import --compress gzip, first run (decides the default).
 */
import { join } from 'node:path';
import { writeLock, type LockEntry } from '../../tasks/images/lock.ts';
import { loadInventory } from '../../tasks/inventory/load.ts';
import { writeFixtureArchive } from '../helpers/archives.ts';
import { exec, onNode, sshArgs, timed } from '../helpers/bench.ts';
import { startMirror, useMirror } from '../helpers/k3s-mirror.ts';
import { armlab, startTestLab } from '../helpers/lab.ts';

const V1 = 'v1.31.12+k3s1';
const IMAGE_BYTES = 50e6;
const LINK_BITS = 240e6;
const UPLINK_BITS = 1e9;

export async function benchImport(): Promise<Record<string, string>> {
  const lab = await startTestLab(
    ['pi1', 'pi2', 'pi3'].map((name) => ({ name, userland: 'amd64' as const })),
    { linkRate: '240mbit', uplinkRate: '1gbit' },
  );
  const mirror = await startMirror(join(lab.dir, 'mirror'), [V1], { stable: V1 });
  try {
    const cacheDir = join(lab.dir, 'images-cache');
    const env = { ...process.env, ARMLAB_CACHE: join(lab.dir, 'cache'), ARMLAB_IMAGES_CACHE: cacheDir };
    await useMirror(lab.inventory, mirror, V1);
    const installed = await armlab(['k3s:install', '--inventory', lab.inventory], { timeoutMs: 900_000, env });
    if (installed.code !== 0) throw new Error(`k3s:install failed:\n${installed.stdout}`);
    const nodes = (await loadInventory(lab.inventory)).nodes;

    const entries: LockEntry[] = [];
    for (const name of ['frr', 'meshnet', 'topo']) {
      entries.push(await writeFixtureArchive({ name, tag: '1', platform: 'linux/amd64', bytes: IMAGE_BYTES }, join(cacheDir, 'archives', `${name}_1.tar`)));
    }
    await writeLock({ version: 1, images: Object.fromEntries(entries.map((e) => [e.name, e])) }, join(cacheDir, 'images.lock.json'));
    const refs = entries.map((e) => `docker.io/${e.image}`).join(' ');
    const totalBytes = entries.reduce((n, e) => n + e.size, 0);
    const reset = () => Promise.all(nodes.map((n) => onNode(n, `sudo k3s ctr -n k8s.io images rm --sync ${refs} >/dev/null 2>&1 || true; rm -rf ~/armlab-bench`)));
    const ctrImport = 'sudo k3s ctr -n k8s.io images import --platform linux/amd64';

    await reset();
    const manual = await timed('import (a) manual: scp all, then import in a loop, node after node', async () => {
      for (const node of nodes) {
        await onNode(node, 'mkdir -p ~/armlab-bench');
        for (const e of entries) await exec('scp', ['-q', ...sshArgs(node).map((a) => (a === '-p' ? '-P' : a)), e.archive, `${node.user}@${node.address}:armlab-bench/`]);
      }
      for (const node of nodes) await onNode(node, `for f in ~/armlab-bench/*.tar; do ${ctrImport} "$f" >/dev/null; done`);
    });
    await reset();
    const pipe = await timed('import (p) bare pipe: ssh … import - < file, all nodes at once', () =>
      Promise.all(nodes.map(async (node) => {
        for (const e of entries) await onNode(node, `${ctrImport} - >/dev/null`, e.archive);
      })),
    );
    await reset();
    const run = async (label: string, extra: string[] = []) => {
      let out = '';
      const t = await timed(label, async () => {
        const r = await armlab(['images:import', '--inventory', lab.inventory, ...extra], { timeoutMs: 900_000, env });
        if (r.code !== 0) throw new Error(`images:import failed:\n${r.stdout}\n${r.stderr}`);
        out = r.stdout;
      });
      return { t, out };
    };
    const first = await run('import (b) images:import, first run');
    const again = await run('import (c) images:import, nothing changed (CLI, with Node start-up)');
    // The same re-run inside this process: armlab's own work (connect, probe, plan), without Node and module start-up.
    const { imagesImportCommand } = await import('../../tasks/import/command.ts');
    Object.assign(process.env, env);
    const inProcess = await timed('import (c) images:import, nothing changed (in process)', async () => {
      const write = process.stdout.write.bind(process.stdout);
      process.stdout.write = (() => true) as typeof process.stdout.write;
      try {
        if ((await imagesImportCommand(['--inventory', lab.inventory])) !== 0) throw new Error('in-process re-run failed');
      } finally {
        process.stdout.write = write;
      }
    });
    // Which default --compress should have: the same first run with gzip on the wire (the lab hosts have no zstd).
    await reset();
    const gzip = await run('import (g) images:import --compress gzip, first run', ['--compress', 'gzip']);
    const sent = [...again.out.matchAll(/^\S+\s+armlab\/\S+\s+\S+\s+([\d.]+) MB\s/gm)].reduce((n, m) => n + Number(m[1]) * 1e6, 0);
    const linkBound = Math.max((nodes.length * totalBytes * 8) / UPLINK_BITS, (totalBytes * 8) / LINK_BITS);
    process.stderr.write(`import link bound max(N·S/B, S/b): ${linkBound.toFixed(2)}s for ${(totalBytes / 1e6).toFixed(0)} MB to each of ${nodes.length} nodes\n`);
    return {
      import_vs_manual: (first.t / manual).toFixed(3),
      import_vs_pipe: (first.t / pipe).toFixed(3),
      import_vs_link_bound: (first.t / linkBound).toFixed(3),
      rerun_vs_first: (inProcess / first.t).toFixed(3),
      rerun_cli_vs_first: (again.t / first.t).toFixed(3),
      rerun_image_bytes: String(Math.round(sent)),
      import_gzip_vs_none: (gzip.t / first.t).toFixed(3),
    };
  } finally {
    await mirror.close();
    await lab.down();
  }
}
