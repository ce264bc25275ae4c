/**
 * Benchmark (not a test): a night with nothing changed upstream against a cold
 * build of every shipped recipe (from the fixture upstreams), both in this run
 * on a fresh, isolated Docker Engine. The night must build nothing and send
 * nothing: it never contacts a node (the inventory's node does not exist).
 * Debian inputs fetched on this machine's side stay cached by their inputs.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import type { NightlyReport } from '../../tasks/nightly/report.ts';
import { timed } from '../helpers/bench.ts';
import { startEngine } from '../helpers/docker.ts';
import { armlab, makeTestDir } from '../helpers/lab.ts';
import { fixtureRecipes } from '../helpers/upstream.ts';

export async function benchNightly(): Promise<Record<string, string>> {
  const work = await makeTestDir();
  const engine = await startEngine();
  try {
    const { imagesDir, patchesDir, mirrors } = await fixtureRecipes(work);
    const inventory = join(work, 'bench.yaml');
    const report = join(work, 'night.json');
    // 192.0.2.0/24 is TEST-NET-1: a node that cannot be reached, so that any contact would fail the night.
    await writeFile(inventory, dump({
      cluster: 'bench',
      nodes: [{ name: 'pi1', address: '192.0.2.1', role: 'server' }],
      images: { engine: engine.host, recipes: imagesDir, patches: patchesDir, sourceMirrors: mirrors },
      nightly: { report, metrics: join(work, 'night.prom') },
    }));
    const env = { ...process.env, ARMLAB_IMAGES_CACHE: join(work, 'cache') };
    const cold = await timed('images:build, every recipe, cold', async () => {
      const r = await armlab(['images:build', '--inventory', inventory], { timeoutMs: 3_600_000, env });
      if (r.code !== 0) throw new Error(`cold build failed:\n${r.stdout}\n${r.stderr}`);
    });
    const night = await timed('nightly, nothing changed upstream', async () => {
      const r = await armlab(['nightly', '--inventory', inventory], { timeoutMs: 900_000, env });
      if (r.code !== 0) throw new Error(`the night failed:\n${r.stdout}\n${r.stderr}`);
    });
    const result = JSON.parse(await readFile(report, 'utf8')) as NightlyReport;
    const built = result.images.filter((i) => i.buildSeconds !== null).length;
    const sent = result.nodes.reduce((n, node) => n + node.imported.length, 0);
    return { nightly_quiet_vs_cold_build: (night / cold).toFixed(3), nightly_quiet_images_built: String(built), nightly_quiet_images_sent: String(sent) };
  } finally {
    await engine.stop();
    await rm(work, { recursive: true, force: true });
  }
}
