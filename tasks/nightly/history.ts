/**
 * The last good builds of each image: kept in the images lock's history
 * (newest first, at most KEEP) with their archives hard-linked under
 * archives/history/<image>/<build>.tar, so that a new build overwriting the
 * current archive never takes the previous one with it, and images:rollback
 * can put any of them back.
 */
import { existsSync } from 'node:fs';
import { link, mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { imagesCacheDir, type HistoryEntry, type LockEntry, type LockFile } from '../images/lock.ts';

export const KEEP = 3;

/** "2026-12-01T03:15:02.123Z" + "sha256:3fa2c1d9…" → "20261201T031502Z-3fa2c1d9". */
export function buildName(entry: Pick<LockEntry, 'builtAt' | 'configDigest'>): string {
  const when = entry.builtAt.replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
  return `${when}-${entry.configDigest.replace(/^sha256:/, '').slice(0, 8)}`;
}

export const historyArchive = (name: string, build: string) => join(imagesCacheDir(), 'archives', 'history', name, `${build}.tar`);

/** Hard-link (the same bytes, no copy) `from` at `to`, replacing what is there. */
async function linkAt(from: string, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  const [a, b] = await Promise.all([stat(from), stat(to).catch(() => null)]);
  // Two names of one file already: a rename between them would do nothing and leave the .part name behind.
  if (b && a.ino === b.ino && a.dev === b.dev) return;
  await rm(`${to}.part`, { force: true });
  await link(from, `${to}.part`);
  await rename(`${to}.part`, to);
}

/**
 * Record the image's current lock entry as its newest good build, unless it
 * is already. Drops (and deletes the archives of) builds beyond KEEP.
 */
export async function recordGood(lock: LockFile, name: string): Promise<HistoryEntry | null> {
  const current = lock.images[name];
  if (!current || !existsSync(current.archive)) return null;
  const build = buildName(current);
  const list = (lock.history ??= {})[name] ?? [];
  if (list[0]?.build === build) return list[0];
  const kept = historyArchive(name, build);
  await linkAt(current.archive, kept);
  const entry: HistoryEntry = { ...current, archive: kept, build };
  const next = [entry, ...list.filter((e) => e.build !== build)];
  for (const dropped of next.slice(KEEP)) await rm(dropped.archive, { force: true });
  lock.history[name] = next.slice(0, KEEP);
  return entry;
}

/**
 * Make a kept build the image's current one again: its archive linked back
 * at the current archive path and its entry in lock.images. The caller
 * writes the lock.
 */
export async function restoreBuild(lock: LockFile, name: string, build: HistoryEntry): Promise<LockEntry> {
  if (!existsSync(build.archive)) throw new Error(`the archive of ${name} build ${build.build} is gone (${build.archive}); it cannot be put back`);
  const currentPath = lock.images[name]?.archive ?? join(imagesCacheDir(), 'archives', `${name}_${build.image.slice(build.image.lastIndexOf(':') + 1)}.tar`);
  await linkAt(build.archive, currentPath);
  const { build: _name, ...entry } = build;
  lock.images[name] = { ...entry, archive: currentPath };
  return lock.images[name];
}

/** The kept builds of an image, newest first. */
export function historyOf(lock: LockFile, name: string): HistoryEntry[] {
  return lock.history?.[name] ?? [];
}
