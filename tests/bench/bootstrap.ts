/**
 * Benchmark (not a test): a second `bootstrap` once everything is built and
 * deployed, on a 3-host armhf lab with the k3s stand-in and a real Docker
 * Engine, against a baseline measured in the same run: one SSH round trip
 * running `k3s --version` on every node at once (the least any step can do).
 * The goal (≤ 2 s per node, nodes in parallel) is read here as the re-run's
 * wall time divided by the number of nodes. The first bootstrap (builds
 * included) is timed and printed but has no goal.
 */
import { spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { loadInventory } from '../../tasks/inventory/load.ts';
import { startEngine } from '../helpers/docker.ts';
import { startMirror } from '../helpers/k3s-mirror.ts';
import { armlab, makeTestDir, startTestLab } from '../helpers/lab.ts';
import { fixtureRecipes } from '../helpers/upstream.ts';

const V1 = 'v1.31.12+k3s1';
const NODES = ['pi1', 'pi2', 'pi3'];

function ssh(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ssh ${args.at(-2)}: exit ${code}: ${err}`))));
  });
}

async function timed<T>(what: string, f: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const result = await f();
  const seconds = (performance.now() - started) / 1000;
  process.stderr.write(`${what}: ${seconds.toFixed(2)} s\n`);
  return [result, seconds];
}

export async function benchBootstrap(): Promise<Record<string, string>> {
  const work = await makeTestDir();
  const recipes = await fixtureRecipes(work);
  const engine = await startEngine();
  const lab = await startTestLab(NODES.map((name) => ({ name, userland: 'armhf' as const })));
  const mirror = await startMirror(join(work, 'mirror'), [V1], { stable: V1 });
  try {
    const raw = load(await readFile(lab.inventory, 'utf8')) as Record<string, unknown>;
    raw.k3s = { version: V1, mirror: mirror.url };
    await writeFile(lab.inventory, dump(raw));
    const env = { ...process.env, ARMLAB_CACHE: join(work, 'cache'), ARMLAB_IMAGES_CACHE: join(work, 'images-cache'), KUBECONFIG: join(work, 'kubeconfig') };
    const args = ['bootstrap', '--inventory', lab.inventory, '--images-dir', recipes.imagesDir, '--patches-dir', recipes.patchesDir, '--docker-host', engine.host, '--rollout-timeout', '300'];
    const run = async () => {
      const r = await armlab(args, { timeoutMs: 3_600_000, env });
      if (r.code !== 0) throw new Error(`bootstrap failed:\n${r.stdout}${r.stderr}`);
      return r.stdout;
    };
    await timed('bootstrap, first run (builds, k3s, import, rollouts)', run);
    const [again, rerun] = await timed('bootstrap, second run (nothing to change)', run);
    process.stderr.write(`${again.slice(again.lastIndexOf('STEP'))}\n`);
    const nodes = (await loadInventory(lab.inventory)).nodes;
    const [, roundTrip] = await timed('baseline: `k3s --version` over SSH on every node at once', () =>
      Promise.all(nodes.map((n) => ssh(['-i', n.privateKey, '-o', `UserKnownHostsFile=${n.knownHosts}`, '-o', 'BatchMode=yes', `root@${n.address}`, 'k3s --version']))),
    );
    return {
      bootstrap_rerun_seconds_per_node: (rerun / nodes.length).toFixed(2),
      bootstrap_rerun_vs_round_trip: (rerun / roundTrip).toFixed(1),
    };
  } finally {
    await mirror.close();
    await lab.down();
    await engine.stop();
    await rm(work, { recursive: true, force: true });
  }
}
