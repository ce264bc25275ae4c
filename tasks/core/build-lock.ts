/**
 * One builder of a cached artefact at a time, across processes: flock(1) on a
 * lock file, held by a child for as long as `fn` runs. The kernel releases it
 * when that child ends, and the child ends when this process does (its stdin
 * closes), so a killed builder leaves nothing to take over, whatever PID
 * namespace it ran in (the nightly's spare host shares the cache). For caches
 * that commands or test files running side by side may both find missing: a
 * golden rootfs, a debootstrap, fetched .debs.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';

export async function withBuildLock<T>(lockFile: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(dirname(lockFile), { recursive: true });
  const holder = spawn('flock', ['--exclusive', lockFile, 'sh', '-c', 'echo held; exec cat > /dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  holder.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    holder.stdout.once('data', () => resolve());
    holder.once('error', (err) => reject(new Error(`cannot lock ${lockFile}: ${err.message} (flock is in Debian's util-linux)`)));
    holder.once('exit', (code) => reject(new Error(`cannot lock ${lockFile}: flock exited ${code}: ${stderr.trim()}`)));
  });
  try {
    return await fn();
  } finally {
    const exited = once(holder, 'exit');
    holder.stdin.end();
    await exited;
  }
}
