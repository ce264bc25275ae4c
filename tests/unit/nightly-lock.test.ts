/**
 * The run locks with real processes: a live holder refuses a second run
 * (exit 3, naming it), a dead one is taken over, a recycled PID is not taken
 * for the holder (the command taking it over says so), and a run releases
 * only its own lock.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { acquireLock, holderIsGone, LockHeldError, processStart } from '../../tasks/core/run-lock.ts';
import { armlab } from '../helpers/lab.ts';

const scratchDirs: string[] = [];
const scratch = () => {
  const dir = mkdtempSync(join(tmpdir(), 'armlab-lock-'));
  scratchDirs.push(dir);
  return join(dir, 'nightly.lock');
};
after(() => { for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true }); });

test('a held lock refuses a second nightly with exit code 3, naming the holder; release frees it', async () => {
  const file = scratch();
  const held = await acquireLock(file, new Date('2026-12-01T03:00:00Z'));
  assert.equal(held.tookOverFrom, null);
  const second = await acquireLock(file).then(() => null, (err: unknown) => err);
  assert.ok(second instanceof LockHeldError);
  assert.equal(second.exitCode, 3);
  assert.equal(second.message, `another nightly holds ${file}: PID ${process.pid} on ${hostname()}, started 2026-12-01T03:00:00.000Z; not starting a second one`);
  await held.release();
  assert.ok(!existsSync(file));
  await (await acquireLock(file)).release();
});

test('a lock whose process is gone is taken over, and the taker says whose it was', async () => {
  const file = scratch();
  // A real process that held the lock and died without releasing it.
  const child = spawn(process.execPath, ['-e', '0']);
  const pid = child.pid!;
  const start = await new Promise<string | null>((resolve) => resolve(processStart(pid)));
  await new Promise((resolve) => child.on('exit', resolve));
  writeFileSync(file, JSON.stringify({ host: hostname(), pid, pidStart: start ?? '1', startedAt: '2026-11-30T03:00:00.000Z' }));
  const held = await acquireLock(file);
  assert.deepEqual(held.tookOverFrom, { host: hostname(), pid, pidStart: start ?? '1', startedAt: '2026-11-30T03:00:00.000Z' });
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).pid, process.pid);
  await held.release();
});

test('a recycled PID is not the holder; a holder on another host counts as alive; a torn lock file is stale', async () => {
  const mine = { host: 'spare', pid: process.pid, pidStart: processStart(process.pid)!, startedAt: 'x' };
  assert.equal(holderIsGone(mine, 'spare', processStart), false);
  assert.equal(holderIsGone({ ...mine, pidStart: '1' }, 'spare', processStart), true, 'same PID, another process');
  assert.equal(holderIsGone({ ...mine, pid: 999_999_999 }, 'other-pi', processStart), false, 'cannot be judged from here');
  const file = scratch();
  writeFileSync(file, '{"host": "spa');
  const held = await acquireLock(file);
  assert.equal(held.tookOverFrom?.pid, 0);
  // Someone else's lock (written over ours) is not removed by our release.
  writeFileSync(file, JSON.stringify({ host: hostname(), pid: 1, pidStart: processStart(1) ?? '', startedAt: 'y' }));
  await held.release();
  assert.ok(existsSync(file));
});

test('the images cache lock names what holds it: images:build by hand refuses beside a nightly, and a nightly beside images:build', async () => {
  const cache = dirname(scratch());
  const file = join(cache, 'images-cache.lock');
  const night = await acquireLock(file, new Date('2026-12-01T03:00:00Z'));
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).command, 'nightly');
  // The real command, on the same cache: exit 3 before it touches an engine or a source.
  const r = await armlab(['images:build', '--images', 'base'], { env: { ...process.env, ARMLAB_IMAGES_CACHE: cache, DOCKER_HOST: 'unix:///nonexistent/docker.sock' } });
  assert.equal(r.code, 3, r.stdout + r.stderr);
  assert.equal(r.stderr, `armlab: a nightly holds ${file}: PID ${process.pid} on ${hostname()}, started 2026-12-01T03:00:00.000Z; images:build does not run beside it: run it again once that one has finished\n`);
  await night.release();
  const build = await acquireLock(file, new Date('2026-12-01T03:00:00Z'), 'images:build');
  const refused = await acquireLock(file).then(() => null, (err: unknown) => err);
  assert.ok(refused instanceof LockHeldError);
  assert.match(refused.message, /^images:build holds .*; nightly does not run beside it/);
  await build.release();
});

test('images:build takes over the images cache lock of a run that is gone, and says so', async () => {
  const cache = dirname(scratch());
  const file = join(cache, 'images-cache.lock');
  const child = spawn(process.execPath, ['-e', '0']);
  const start = processStart(child.pid!);
  await new Promise((resolve) => child.on('exit', resolve));
  writeFileSync(file, JSON.stringify({ command: 'nightly', host: hostname(), pid: child.pid, pidStart: start ?? '1', startedAt: '2026-11-30T03:00:00.000Z' }));
  // The real command: it takes the lock over, then fails on the engine that is not there, and releases the lock.
  const r = await armlab(['images:build', '--images', 'base'], { env: { ...process.env, ARMLAB_IMAGES_CACHE: cache, DOCKER_HOST: 'unix:///nonexistent/docker.sock' } });
  assert.notEqual(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`^images:build: took over the stale lock of PID ${child.pid} on ${hostname()} \\(started 2026-11-30T03:00:00\\.000Z; that process is gone\\): ${file}$`, 'm'));
  assert.ok(!existsSync(file), 'released');
});
