/**
 * nightly --inventory FILE [--check]: one inventory's night, under its lock:
 * resolve, decide, build and smoke-run, roll out (or back), report.
 * Exit 0 when nothing failed (changed or not), 1 when something did, 3 when
 * another nightly holds the lock.
 */
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { parseCommon, requireInventory, type CommonArgs } from '../core/args.ts';
import { reasonOf, UsageError } from '../core/errors.ts';
import { requireCommands } from '../core/local.ts';
import { chooseEngine, loadAllRecipes, sourceMirrorsOf } from '../images/command.ts';
import { enginePlatformOf } from '../images/engine.ts';
import { recipeFolders } from '../images/folders.ts';
import { buildOrder } from '../images/recipe.ts';
import { loadInventory } from '../inventory/load.ts';
import type { Inventory } from '../inventory/types.ts';
import { decide } from './decide.ts';
import { buildName, historyOf, recordGood, restoreBuild } from './history.ts';
import { acquireOrExit, type HeldLock } from '../core/run-lock.ts';
import { buildNight } from './night-build.ts';
import { nightlyPaths, type NightlyPaths } from './paths.ts';
import { outcomeOf, renderSummary, type ImageReport, type NightlyReport } from './report.ts';
import { writeReport } from './report-files.ts';
import { resolveAll } from './resolve.ts';
import { putOnNodes, rollOut, type RolloutOptions } from './rollout.ts';
import { imagesCacheLockPath, readLock, writeLock, type LockFile } from '../images/lock.ts';

export const NIGHTLY_FLAGS = {
  'docker-host': { type: 'string' },
  'images-dir': { type: 'string' },
  'patches-dir': { type: 'string' },
  'source-mirror': { type: 'string', multiple: true },
  'rollout-timeout': { type: 'string', default: '300' },
} as const;

export interface NightContext {
  common: CommonArgs;
  values: Record<string, unknown>;
  inventory: Inventory;
  inventoryPath: string;
  paths: NightlyPaths;
  started: Date;
  lock: HeldLock;
  log: (m: string) => void;
}

export function rolloutTimeoutMs(values: Record<string, unknown>): number {
  const seconds = Number(values['rollout-timeout']);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new UsageError(`--rollout-timeout: got "${String(values['rollout-timeout'])}", expected seconds, e.g. 300`);
  return seconds * 1000;
}

/** Parse, take the lock, run `night`, and always write the report and release the lock. */
export async function underLock(argv: string[], kind: NightlyReport['kind'], night: (ctx: NightContext) => Promise<Pick<NightlyReport, 'images' | 'nodes' | 'error'>>, extra = {}): Promise<number> {
  const { common, values } = parseCommon(argv, { ...NIGHTLY_FLAGS, ...extra });
  const inventoryPath = resolve(requireInventory(common));
  const inventory = await loadInventory(inventoryPath);
  rolloutTimeoutMs(values);
  const paths = nightlyPaths(inventory, inventoryPath);
  const started = new Date();
  const command = kind === 'rollback' ? 'images:rollback' : 'nightly';
  const lock = await acquireOrExit(paths.lock, started, command);
  if (typeof lock === 'number') return lock;
  // Each lock released whatever happens after it was taken, the other's release failing included.
  try {
    // The images cache (lock file, archives, kept builds) is one per machine, whatever the inventory.
    const cacheLock = await acquireOrExit(imagesCacheLockPath(), started, command, " (the images cache is this machine's, whatever the inventory)");
    if (typeof cacheLock === 'number') return cacheLock;
    try {
      return await nightAndReport({ kind, common, values, inventory, inventoryPath, paths, started, lock }, night);
    } finally {
      await cacheLock.release();
    }
  } finally {
    await lock.release();
  }
}

/** Run the night and write its report (a failed night too); a usage error writes none. */
async function nightAndReport(ctx: Omit<NightContext, 'log'> & { kind: NightlyReport['kind'] }, night: (ctx: NightContext) => Promise<Pick<NightlyReport, 'images' | 'nodes' | 'error'>>): Promise<number> {
  const { kind, common, inventory, inventoryPath, paths, started, lock } = ctx;
  const log = (m: string) => process.stdout.write(`${m}\n`);
  let body: Pick<NightlyReport, 'images' | 'nodes' | 'error'>;
  try {
    body = await night({ ...ctx, log });
  } catch (err) {
    // Bad usage is not a failed night: no report, exit 2.
    if (err instanceof UsageError) throw err;
    body = { images: [], nodes: [], error: reasonOf(err) };
  }
  const finished = new Date();
  const from = lock.tookOverFrom;
  const report: NightlyReport = {
    version: 1,
    kind,
    check: common.check,
    inventory: inventoryPath,
    cluster: inventory.cluster,
    host: hostname(),
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationSeconds: (finished.getTime() - started.getTime()) / 1000,
    outcome: outcomeOf(kind, body.images, body.error),
    tookOverLockFrom: from ? { host: from.host, pid: from.pid, startedAt: from.startedAt } : null,
    images: body.images,
    nodes: body.nodes,
    ...(body.error ? { error: body.error } : {}),
  };
  const written = await writeReport(report, paths);
  process.stdout.write(`\n${renderSummary(report)}report: ${written.join(', ')}\n`);
  return report.outcome === 'failed' ? 1 : 0;
}

/**
 * A night that stopped after building and before its rollout ended (the
 * service killed, the power gone) left builds that were never verified on the
 * nodes as the lock's current ones: put them back on their last good builds,
 * on every node too, before anything else.
 */
async function recoverPending(file: string, lock: LockFile, opts: RolloutOptions): Promise<void> {
  const pending = await readFile(file, 'utf8').then((t) => (JSON.parse(t) as { images: string[] }).images, () => null);
  if (!pending) return;
  const restored: string[] = [];
  for (const name of pending) {
    const good = historyOf(lock, name)[0];
    const current = lock.images[name];
    if (good && current && buildName(current) !== good.build) {
      await restoreBuild(lock, name, good);
      restored.push(name);
    }
  }
  await writeLock(lock);
  if (restored.length) {
    opts.log(`the last night stopped before its rollout ended: putting ${restored.join(', ')} back on their last good builds`);
    const put = await putOnNodes(restored, lock, opts, 'rolledBack');
    if (put.error) throw new Error(`the last night stopped before its rollout ended, and putting ${restored.join(', ')} back failed: ${put.error}`);
  }
  await rm(file, { force: true });
}

async function night(ctx: NightContext): Promise<Pick<NightlyReport, 'images' | 'nodes' | 'error'>> {
  const { common, values, inventory, log } = ctx;
  const all = buildOrder(await loadAllRecipes(values, inventory));
  const sourceMirrors = sourceMirrorsOf(values, inventory);
  if (all.some((r) => r.source?.git)) await requireCommands({ git: 'git' }, 'nightly (recipes with git sources)');
  const { engine, engineName, version } = await chooseEngine(values, inventory);
  const buildPlatform = enginePlatformOf(version.Arch);
  log(`engine: ${engineName}, Docker ${version.Version} on ${version.Arch}`);
  const lock = await readLock();
  const imagesDir = recipeFolders(values, inventory).imagesDir;
  const rolloutOpts = { inventory, common, imagesDir, rolloutTimeoutMs: rolloutTimeoutMs(values), log };
  const pendingFile = join(ctx.paths.state, 'pending.json');
  if (!common.check) {
    await recoverPending(pendingFile, lock, rolloutOpts);
    // The builds the cluster runs now are the first good ones of a fresh history.
    for (const r of all) await recordGood(lock, r.name);
    await writeLock(lock);
  }
  const resolutions = await resolveAll(all, lock, { sourceMirrors, buildPlatform: buildPlatform.platform, buildArch: buildPlatform.debianArch, log });
  const decisions = decide(all, lock, resolutions, existsSync);
  if (common.check) {
    const images: ImageReport[] = decisions.map((d) => ({
      name: d.name, image: d.image, oldInputHash: d.oldHash, newInputHash: d.newHash, reasons: d.reasons,
      result: d.error ? 'not built' : d.rebuild ? 'would build' : 'unchanged', build: null, buildSeconds: null, ...(d.error ? { error: d.error } : {}),
    }));
    return { images, nodes: [] };
  }
  const rebuilding = decisions.filter((d) => d.rebuild).map((d) => d.name);
  // Until their rollout is done, tonight's builds are not good ones: a night cut short is undone by the next.
  if (rebuilding.length) await writeFile(pendingFile, `${JSON.stringify({ images: rebuilding })}\n`);
  const images = await buildNight(all, decisions, resolutions, lock, { engine, buildPlatform, sourceMirrors, verbose: common.verbose, log });
  const built = images.filter((i) => i.result === 'built').map((i) => i.name);
  if (!built.length) {
    await rm(pendingFile, { force: true });
    return { images, nodes: [] };
  }
  const rollout = await rollOut(built, lock, rolloutOpts);
  await rm(pendingFile, { force: true });
  for (const i of images) {
    if (!built.includes(i.name)) continue;
    if (rollout.rolledBack.includes(i.name)) Object.assign(i, { result: 'rolled back', error: rollout.error });
    else if (rollout.error) Object.assign(i, { result: 'rollout failed', error: rollout.error });
    else Object.assign(i, { result: 'rolled out', build: lock.history?.[i.name]?.[0]?.build ?? null });
  }
  return { images, nodes: rollout.nodes, ...(rollout.error ? { error: rollout.error } : {}) };
}

export const nightlyCommand = (argv: string[]) => underLock(argv, 'nightly', night);
