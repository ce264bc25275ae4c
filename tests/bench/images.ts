/**
 * Benchmark (not a test): images:build cold against an unchanged rebuild, both
 * measured in this run against a fresh, isolated Docker Engine. "Cold" starts
 * with an empty images cache and an empty engine; Debian inputs fetched on this
 * machine's side stay cached by their inputs (fetching them is not building).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { timed } from '../helpers/bench.ts';
import { startEngine } from '../helpers/docker.ts';
import { armlab } from '../helpers/lab.ts';

export async function benchImages(): Promise<Record<string, string>> {
  let engine = await startEngine();
  const cache = await mkdtemp(join(tmpdir(), 'armlab-bench-'));
  const env = { ...process.env, ARMLAB_IMAGES_CACHE: cache };
  const build = (label: string) =>
    timed(`images ${label}`, async () => {
      const r = await armlab(['images:build', '--docker-host', engine.host, '--images', 'base,frr'], { timeoutMs: 1_800_000, env });
      if (r.code !== 0) throw new Error(`${label} build failed:\n${r.stdout}\n${r.stderr}`);
    });
  try {
    await build('warm-up (Debian inputs into the source cache)');
    // A truly cold build: a new engine and an empty images cache.
    await engine.stop();
    engine = await startEngine();
    await rm(cache, { recursive: true, force: true });
    const cold = await build('cold build');
    const rebuild = await build('rebuild, nothing changed');
    return { images_rebuild_vs_cold: (rebuild / cold).toFixed(3) };
  } finally {
    await engine.stop();
    await rm(cache, { recursive: true, force: true });
  }
}
