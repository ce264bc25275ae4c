/** images:build [--images a,b] [--docker-host URL] [--inventory FILE]: build, verify, export, lock. */
import { resolve } from 'node:path';
import { parseCommon } from '../core/args.ts';
import { reasonOf, UsageError } from '../core/errors.ts';
import { renderTable } from '../core/table.ts';
import { loadInventory } from '../inventory/load.ts';
import { suggestion } from '../inventory/rules.ts';
import { buildOne, type ImageResult } from './build.ts';
import { builderEngine, localEngine } from './engine.ts';
import { readLock } from './lock.ts';
import { prepareAll } from './prepare.ts';
import { buildOrder, listRecipes, loadRecipe, type Recipe } from './recipe.ts';

const EXTRA = {
  images: { type: 'string' },
  'docker-host': { type: 'string' },
  'images-dir': { type: 'string', default: 'images' },
  'patches-dir': { type: 'string', default: 'patches' },
} as const;

/** The named recipes plus every base they need, in build order. */
export function selectRecipes(all: Recipe[], names: string[] | null): Recipe[] {
  const byName = new Map(all.map((r) => [r.name, r]));
  if (!names) return buildOrder(all);
  const picked = new Set<string>();
  const add = (name: string) => {
    const r = byName.get(name);
    if (!r) throw new UsageError(`--images: no recipe "${name}" in images/${suggestion(name, [...byName.keys()])}`);
    picked.add(name);
    if (r.base) add(r.base);
  };
  names.forEach(add);
  return buildOrder(all.filter((r) => picked.has(r.name)));
}

export async function imagesBuildCommand(argv: string[]): Promise<number> {
  const { common, values } = parseCommon(argv, EXTRA);
  const imagesDir = resolve(String(values['images-dir']));
  const patchesDir = resolve(String(values['patches-dir']));
  const all = await Promise.all((await listRecipes(imagesDir)).map((n) => loadRecipe(imagesDir, patchesDir, n)));
  const names = typeof values.images === 'string' ? values.images.split(',').map((s) => s.trim()).filter(Boolean) : null;
  const ordered = selectRecipes(all, names);

  let engine = localEngine(typeof values['docker-host'] === 'string' ? values['docker-host'] : undefined);
  if (common.inventory && typeof values['docker-host'] !== 'string') {
    const inventory = await loadInventory(common.inventory);
    const builder = inventory.nodes.find((n) => n.name === inventory.images.builder);
    if (builder) engine = builderEngine(builder);
  }
  const log = (m: string) => process.stdout.write(`${m}\n`);
  const results: ImageResult[] = [];
  // Every source fetched and every patch applied before the first build.
  const prepared = await prepareAll(ordered, log).catch((err) => {
    process.stdout.write(`images:build: nothing built: ${reasonOf(err)}\n`);
    return null;
  });
  if (!prepared) return 1;
  const lock = await readLock();
  for (const recipe of ordered) {
    const p = prepared.get(recipe.name)!;
    try {
      results.push(await buildOne(engine, p, lock, { check: common.check, verbose: common.verbose, log }));
    } catch (err) {
      results.push({ name: recipe.name, image: recipe.image, status: 'failed', reason: (err as Error).message.split('\n')[0] ?? '' });
      if (common.verbose) process.stdout.write(`${(err as Error).message}\n`);
    }
  }
  process.stdout.write(`\n${renderTable(['IMAGE', 'RESULT', 'REASON'], results.map((r) => [r.image, r.status, r.reason]))}\n`);
  const failed = results.filter((r) => r.status === 'failed');
  process.stdout.write(failed.length ? `\nimages:build: FAILED: ${failed.map((r) => r.name).join(', ')}\n` : '\nimages:build: ok\n');
  return failed.length ? 1 : 0;
}
