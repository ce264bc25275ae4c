/**
 * One builder of a cached artefact at a time, across processes: an O_EXCL lock
 * file holding the builder's PID, waited on while that process lives and taken
 * over once it is gone. For caches that test files or commands running side by
 * side may both find missing (a golden rootfs, a debootstrap, fetched .debs).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export async function withBuildLock<T>(lockFile: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(dirname(lockFile), { recursive: true });
  for (;;) {
    try {
      await writeFile(lockFile, String(process.pid), { flag: 'wx' });
      break;
    } catch {
      if (await isStale(lockFile)) await rm(lockFile, { force: true });
      else await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockFile, { force: true });
  }
}

async function isStale(lockFile: string): Promise<boolean> {
  const holder = Number(await readFile(lockFile, 'utf8').catch(() => '0'));
  if (holder) return !existsSync(`/proc/${holder}`);
  // Empty: its maker may not have written its PID yet, unless that was long ago.
  const made = await stat(lockFile).catch(() => null);
  return !made || Date.now() - made.mtimeMs > 10_000;
}
