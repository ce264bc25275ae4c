/** images:build [--images a,b] [--docker-host URL] [--inventory FILE]: build, verify, export, lock. */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseCommon } from '../core/args.ts';
import { requireCommands } from '../core/local.ts';
import { noteChange } from '../core/changes.ts';
import { ProblemsError, reasonOf, RefusalError, UsageError } from '../core/errors.ts';
import { renderTable } from '../core/table.ts';
import { runInDependencyOrder } from '../core/schedule.ts';
import type Docker from 'dockerode';
import { loadInventory } from '../inventory/load.ts';
import type { Inventory } from '../inventory/types.ts';
import { suggestion } from '../inventory/rules.ts';
import { buildOne, type ImageResult } from './build.ts';
import { builderEngine, enginePlatformOf, localEngine } from './engine.ts';
import { recipeFolders } from './folders.ts';
import { imagesCacheLockPath, readLock } from './lock.ts';
import { acquireOrExit } from '../core/run-lock.ts';
import { prepareAll } from './prepare.ts';
import { parseMirrorFlags, type SourceMirror } from './source-mirror.ts';
import { buildOrder, crossRecipeProblems, dependenciesOf, listRecipes, loadRecipe, type Recipe } from './recipe.ts';

/** Builds at once by default: one per core, at most 4 (each emulated build also wants memory and disk). */
const DEFAULT_JOBS = Math.min(availableParallelism(), 4);

const EXTRA = {
  images: { type: 'string' },
  'docker-host': { type: 'string' },
  'images-dir': { type: 'string' },
  'patches-dir': { type: 'string' },
  'source-mirror': { type: 'string', multiple: true },
  jobs: { type: 'string' },
} as const;

/** The named recipes plus every base and stage image they need, in build order. */
export function selectRecipes(all: Recipe[], names: string[] | null): Recipe[] {
  const byName = new Map(all.map((r) => [r.name, r]));
  if (!names) return buildOrder(all);
  const picked = new Set<string>();
  const add = (name: string) => {
    const r = byName.get(name);
    if (!r) throw new UsageError(`--images: no recipe "${name}" in images/${suggestion(name, [...byName.keys()])}`);
    picked.add(name);
    dependenciesOf(r).forEach((d) => add(d.name));
  };
  names.forEach(add);
  return buildOrder(all.filter((r) => picked.has(r.name)));
}

/** How to get a Docker Engine on this machine, in the words that work here. */
function startEngineHint(): string {
  const start = existsSync('/run/systemd/system')
    ? 'start it: systemctl start docker (Debian package docker.io)'
    : 'start it (no systemd here): dockerd >/var/log/dockerd.log 2>&1 & (Debian package docker.io)';
  return `${start}; or point --docker-host or the inventory's images.engine at one (npm run lab:up -- --demo starts one for its lab)`;
}

/** Every recipe of the recipes folder (--images-dir, the inventory's images.recipes, or images/), checked across recipes. */
export async function loadAllRecipes(values: Record<string, unknown>, inventory: Inventory | null): Promise<Recipe[]> {
  const { imagesDir, patchesDir } = recipeFolders(values, inventory);
  const all = await Promise.all((await listRecipes(imagesDir)).map((n) => loadRecipe(imagesDir, patchesDir, n)));
  const crossProblems = crossRecipeProblems(all);
  if (crossProblems.length) throw new ProblemsError(crossProblems);
  return all;
}

/** --source-mirror flags first: on the same prefix they win over the inventory's. */
export function sourceMirrorsOf(values: Record<string, unknown>, inventory: Inventory | null): SourceMirror[] {
  const flagMirrors = parseMirrorFlags((values['source-mirror'] as string[] | undefined) ?? []);
  const sourceMirrors: SourceMirror[] = [...flagMirrors];
  if (inventory) {
    for (const [prefix, target] of Object.entries(inventory.images.sourceMirrors)) if (!flagMirrors.some((m) => m.prefix === prefix)) sourceMirrors.push({ prefix, target });
  }
  return sourceMirrors;
}

/** --docker-host, then the inventory's images.engine, then its builder node, then DOCKER_HOST (or the default socket); asked for its version. */
export async function chooseEngine(values: Record<string, unknown>, inventory: Inventory | null): Promise<{ engine: Docker; engineName: string; version: Docker.DockerVersion }> {
  const dockerHost = typeof values['docker-host'] === 'string' ? values['docker-host'] : inventory?.images.engine;
  let engine = localEngine(dockerHost);
  let engineName = dockerHost ?? process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  if (inventory && !dockerHost) {
    const builder = inventory.nodes.find((n) => n.name === inventory.images.builder);
    if (builder) {
      engine = await builderEngine(builder);
      engineName = `builder ${builder.name} (docker over ssh://${builder.user}@${builder.address}:${builder.port})`;
    }
  }
  const version = await engine.version().catch((err: Error) => {
    const start = dockerHost || process.env.DOCKER_HOST || inventory?.images.builder ? 'check that it runs there' : startEngineHint();
    throw new RefusalError(`the Docker Engine at ${engineName} does not answer: ${err.message}; ${start}`);
  });
  return { engine, engineName, version };
}

export async function imagesBuildCommand(argv: string[]): Promise<number> {
  const { common, values } = parseCommon(argv, EXTRA);
  const inventory = common.inventory ? await loadInventory(common.inventory) : null;
  const names = typeof values.images === 'string' ? values.images.split(',').map((s) => s.trim()).filter(Boolean) : null;
  const jobs = values.jobs === undefined ? DEFAULT_JOBS : Number(values.jobs);
  if (!Number.isInteger(jobs) || jobs < 1) throw new UsageError(`--jobs: got "${values.jobs}", expected a whole number of builds at once, 1 or more (default ${DEFAULT_JOBS})`);
  const ordered = selectRecipes(await loadAllRecipes(values, inventory), names);

  // One writer of the images cache at a time: a nightly or rollback writing the same lock, archives and
  // source mirrors now would lose one side's work (--check too prepares sources there).
  const cacheLock = await acquireOrExit(imagesCacheLockPath(), new Date(), 'images:build');
  if (typeof cacheLock === 'number') return cacheLock;
  try {
    const log = (m: string) => process.stdout.write(`${m}\n`);
    const sourceMirrors = sourceMirrorsOf(values, inventory);
    const { engine, engineName, version } = await chooseEngine(values, inventory);
    log(`engine: ${engineName}, Docker ${version.Version} on ${version.Arch}`);
    if (ordered.some((r) => r.source?.git)) await requireCommands({ git: 'git' }, 'images:build (recipes with git sources)');
    return await buildAll(ordered, engine, enginePlatformOf(version.Arch), sourceMirrors, { check: common.check, verbose: common.verbose, jobs, log });
  } finally {
    await cacheLock.release();
  }
}

async function buildAll(ordered: Recipe[], engine: Docker, buildPlatform: ReturnType<typeof enginePlatformOf>, sourceMirrors: SourceMirror[], opts: { check: boolean; verbose: boolean; jobs: number; log: (m: string) => void }): Promise<number> {
  // Every source fetched and every patch applied before the first build.
  const prepared = await prepareAll(ordered, { buildArch: buildPlatform.debianArch, log: opts.log, sourceMirrors }).catch((err) => {
    process.stdout.write(`images:build: nothing built: ${reasonOf(err)}\n`);
    return null;
  });
  if (!prepared) return 1;
  const lock = await readLock();
  // Independent images build side by side: most of a cold build is one emulated dpkg or compiler
  // at a time (k8s-topo's Python packages alone take minutes), so a second build uses the other core.
  const settled = await runInDependencyOrder(ordered, { key: (r) => r.name, after: (r) => [r.base ?? '', ...(r.stages ?? [])], limit: opts.jobs }, async (recipe) => {
    try {
      return await buildOne(engine, prepared.get(recipe.name)!, lock, { ...opts, buildPlatform });
    } catch (err) {
      if (opts.verbose) process.stdout.write(`${(err as Error).message}\n`);
      return { name: recipe.name, image: recipe.image, status: 'failed', reason: (err as Error).message.split('\n')[0] ?? '' } satisfies ImageResult;
    }
  });
  const results = settled.map((s) => (s.status === 'fulfilled' ? s.value : { name: '?', image: '?', status: 'failed' as const, reason: String(s.reason) }));
  for (const r of results) if (r.status === 'built') noteChange(`built ${r.image}`);
  process.stdout.write(`\n${renderTable(['IMAGE', 'RESULT', 'REASON'], results.map((r) => [r.image, r.status, r.reason]))}\n`);
  const failed = results.filter((r) => r.status === 'failed');
  process.stdout.write(failed.length ? `\nimages:build: FAILED: ${failed.map((r) => r.name).join(', ')}\n` : '\nimages:build: ok\n');
  return failed.length ? 1 : 0;
}
