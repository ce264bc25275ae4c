/**
 * The cross-process build lock of the shared caches (tasks/core/build-lock.ts):
 * one holder at a time, and a holder killed outright frees it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { withBuildLock } from '../../tasks/core/build-lock.ts';

test('build lock: one holder at a time; a holder killed with SIGKILL frees it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'armlab-u'));
  try {
    const lock = join(dir, 'cache', 'x.lock');
    const order: string[] = [];
    await Promise.all([1, 2, 3].map((i) => withBuildLock(lock, async () => {
      order.push(`in${i}`);
      await new Promise((r) => setTimeout(r, 100));
      order.push(`out${i}`);
    })));
    assert.match(order.join(' '), /^(in(\d) out\2 ?){3}$/, order.join(' '));

    // Another process takes it and is killed while holding it.
    const script = `import { withBuildLock } from ${JSON.stringify(join(import.meta.dirname, '..', '..', 'tasks', 'core', 'build-lock.ts'))};
      await withBuildLock(${JSON.stringify(lock)}, async () => { console.log('holding'); await new Promise(() => {}); });`;
    const other = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => other.stdout.once('data', () => resolve()));
    let got = false;
    const waiting = withBuildLock(lock, async () => void (got = true));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(got, false, 'not while the other process holds it');
    other.kill('SIGKILL');
    await Promise.race([waiting, new Promise((_, reject) => setTimeout(() => reject(new Error('not freed within 20 s')), 20_000))]);
    assert.equal(got, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
