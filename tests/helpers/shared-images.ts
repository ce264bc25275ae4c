/**
 * The images built from the fixture upstreams, shared between test files: the
 * image test publishes its images cache (archives hard-linked, the lock with
 * its paths rewritten) and later files seed their own cache from it. The lock's
 * input hashes are the key: whatever a seed holds that no longer matches this
 * checkout's recipes, fixtures or code is simply built again.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../tasks/core/local.ts';
import { writeLock, type LockFile } from '../../tasks/images/lock.ts';
import { cacheRoot } from '../../tasks/lab/golden.ts';

const SEED = () => join(cacheRoot(), 'test-images', 'fixtures');

async function copyCache(from: string, to: string): Promise<boolean> {
  const lockFile = join(from, 'images.lock.json');
  if (!existsSync(lockFile)) return false;
  const lock = JSON.parse(await readFile(lockFile, 'utf8')) as LockFile;
  await rm(to, { recursive: true, force: true });
  await mkdir(join(to, 'archives'), { recursive: true });
  const archives = (await readdir(join(from, 'archives'), { withFileTypes: true })).filter((e) => e.isFile() && e.name.endsWith('.tar'));
  for (const a of archives) await run`ln ${join(from, 'archives', a.name)} ${join(to, 'archives', a.name)}`;
  const moved: LockFile = { version: 1, images: {} };
  for (const [name, e] of Object.entries(lock.images)) {
    const file = join(to, 'archives', e.archive.slice(e.archive.lastIndexOf('/') + 1));
    if (existsSync(file)) moved.images[name] = { ...e, archive: file };
  }
  await writeLock(moved, join(to, 'images.lock.json'));
  return true;
}

/** Keep the images of `cache` (an ARMLAB_IMAGES_CACHE) for the test files after this one. */
export async function publishFixtureImages(cache: string): Promise<void> {
  await copyCache(cache, SEED());
}

/** Fill `cache` with the published images; false when none were published (the builds then start cold). */
export async function seedFixtureImages(cache: string): Promise<boolean> {
  return copyCache(SEED(), cache);
}
