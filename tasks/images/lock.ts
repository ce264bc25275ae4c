/** The images lock file: what was built, from which inputs, and where its archive is. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWrite } from '../core/atomic-write.ts';
import { queuePerKey } from '../core/schedule.ts';
import { cacheRoot } from '../lab/golden.ts';
import type { ResolvedInputs } from './facts.ts';

export interface LockEntry {
  name: string;
  image: string;
  imageId: string;
  /** sha256 of the image config (what containerd reports for the image). */
  configDigest: string;
  /** linux/arm/v7 for node images; the build machine's platform for toolchains. */
  platform: string;
  /** `nodes` images go to the nodes; `build-machine` ones are toolchains for build stages only. */
  target: 'nodes' | 'build-machine';
  /** Bytes of the docker-archive. */
  size: number;
  archive: string;
  archiveSha256: string;
  inputHash: string;
  builtAt: string;
  /** What it was built from, resolved (commit, sha256, package versions); the nightly compares these. */
  resolved?: ResolvedInputs;
  resolvedHash?: string;
}

export interface LockFile {
  version: 1;
  images: Record<string, LockEntry>;
  /** Per image, its last good builds (newest first, at most 3), their archives kept: what images:rollback can put back. */
  history?: Record<string, HistoryEntry[]>;
  /** Per image, inputs whose build was rolled back by images:rollback: the nightly does not build them again. */
  heldBack?: Record<string, { resolvedHash: string; build: string; at: string }[]>;
}

export interface HistoryEntry extends LockEntry {
  /** The build's name: when it was built and its config digest, e.g. 20261201T031502Z-3fa2c1d9. */
  build: string;
}

/** Archives, contexts, git mirrors and the lock (ARMLAB_IMAGES_CACHE moves them). */
export function imagesCacheDir(): string {
  return process.env.ARMLAB_IMAGES_CACHE ?? join(cacheRoot(), 'images');
}

/** Debian sources (debootstrap rootfs, .debs): kept in the main cache, keyed by their inputs. */
export function sourcesCacheDir(): string {
  return join(cacheRoot(), 'images', 'sources');
}

export function lockPath(): string {
  return process.env.ARMLAB_IMAGES_LOCK ?? join(imagesCacheDir(), 'images.lock.json');
}

export async function readLock(file = lockPath()): Promise<LockFile> {
  const text = await readFile(file, 'utf8').catch(() => null);
  return text ? (JSON.parse(text) as LockFile) : { version: 1, images: {} };
}

/** Images built side by side record themselves one write at a time (atomicWrite's temp name is per process). */
const lockWrites = queuePerKey();

export function writeLock(lock: LockFile, file = lockPath()): Promise<void> {
  return lockWrites(file, () => writeLockNow(lock, file));
}

async function writeLockNow(lock: LockFile, file: string): Promise<void> {
  const byName = <T>(r: Record<string, T>) => Object.fromEntries(Object.entries(r).sort(([a], [b]) => a.localeCompare(b)));
  const sorted: LockFile = {
    version: 1,
    images: byName(lock.images),
    ...(lock.history ? { history: byName(lock.history) } : {}),
    ...(lock.heldBack ? { heldBack: byName(lock.heldBack) } : {}),
  };
  // Replaced whole and on the disk before the rename: the lock names every archive the nodes get.
  await atomicWrite(file, `${JSON.stringify(sorted, null, 2)}\n`);
}

/** One writer of the images cache (lock file, archives, kept builds) at a time: a nightly, a rollback, images:build. */
export function imagesCacheLockPath(): string {
  return join(imagesCacheDir(), 'images-cache.lock');
}
