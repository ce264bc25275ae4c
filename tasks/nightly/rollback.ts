/**
 * images:rollback --inventory FILE --image NAME [--to BUILD]: put one of the
 * image's kept builds (default: the newest older one whose image is not the current) back
 * on every node and roll the workloads that use it, under the nightly's lock
 * and with its report. The inputs rolled back from are held back: the next
 * nightly does not build them again until upstream moves.
 */
import { RefusalError, UsageError } from '../core/errors.ts';
import { readLock, writeLock, type HistoryEntry } from '../images/lock.ts';
import { recipeFolders } from '../images/folders.ts';
import { buildName, historyOf, restoreBuild } from './history.ts';
import { rolloutTimeoutMs, underLock, type NightContext } from './command.ts';
import type { ImageReport, NightlyReport } from './report.ts';
import { putOnNodes } from './rollout.ts';

const EXTRA = { image: { type: 'string' }, to: { type: 'string' } } as const;

const reportOf = (name: string, oldHash: string | null, target: HistoryEntry): ImageReport => ({
  name,
  image: target.image,
  oldInputHash: oldHash,
  newInputHash: target.resolvedHash ?? null,
  reasons: [],
  result: 'rolled back',
  build: target.build,
  buildSeconds: null,
});

async function rollback(ctx: NightContext): Promise<Pick<NightlyReport, 'images' | 'nodes' | 'error'>> {
  const name = ctx.values.image;
  if (typeof name !== 'string' || !name) throw new UsageError('--image NAME is required (e.g. --image frr)');
  const lock = await readLock();
  const current = lock.images[name];
  const kept = historyOf(lock, name);
  const list = kept.map((b) => `${b.build}${current && b.build === buildName(current) ? ' (current)' : ''}`).join(', ');
  if (!kept.length) throw new RefusalError(`no kept builds of "${name}" (the nightly keeps the last 3 good builds of each image it has run for)`);
  const to = ctx.values.to;
  const held = new Set((lock.heldBack?.[name] ?? []).map((h) => h.resolvedHash));
  // By default the newest build older than the current one whose inputs were not rolled back from before, and whose
  // image differs from the current one (an upstream change that was reverted builds the same image again).
  const older = kept
    .filter((b) => !current || (b.build !== buildName(current) && b.builtAt < current.builtAt && b.configDigest !== current.configDigest))
    .filter((b) => !b.resolvedHash || !held.has(b.resolvedHash))
    .sort((a, b) => b.builtAt.localeCompare(a.builtAt));
  const target = typeof to === 'string' ? kept.find((b) => b.build === to) : older[0];
  if (!target) {
    if (typeof to === 'string') throw new UsageError(`--to: "${to}" is not a kept build of ${name}; kept: ${list}`);
    throw new RefusalError(`${name} has no kept build older than the current one to go back to; kept: ${list}; name one with --to`);
  }
  if (ctx.common.check) {
    return { images: [{ ...reportOf(name, current?.resolvedHash ?? null, target), result: 'unchanged', reasons: [`--check: would put build ${target.build} back on every node (current: ${current ? buildName(current) : 'none'})`] }], nodes: [] };
  }
  const from = current ? buildName(current) : null;
  const report: ImageReport = { ...reportOf(name, current?.resolvedHash ?? null, target), reasons: [`images:rollback from build ${from ?? 'none'} to build ${target.build}`] };
  if (current?.resolvedHash && current.resolvedHash !== target.resolvedHash && from) {
    const held = ((lock.heldBack ??= {})[name] ??= []);
    if (!held.some((h) => h.resolvedHash === current.resolvedHash)) held.push({ resolvedHash: current.resolvedHash, build: from, at: new Date().toISOString() });
  }
  await restoreBuild(lock, name, target);
  await writeLock(lock);
  ctx.log(`${name}: build ${target.build} is current again; importing it onto every node`);
  const imagesDir = recipeFolders(ctx.values, ctx.inventory).imagesDir;
  const put = await putOnNodes([name], lock, { inventory: ctx.inventory, common: ctx.common, imagesDir, rolloutTimeoutMs: rolloutTimeoutMs(ctx.values), log: ctx.log }, 'rolledBack');
  if (put.error) Object.assign(report, { result: 'rollout failed', error: put.error });
  return { images: [report], nodes: put.nodes, ...(put.error ? { error: put.error } : {}) };
}

export const imagesRollbackCommand = (argv: string[]) => underLock(argv, 'rollback', rollback, EXTRA);
