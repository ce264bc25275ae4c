/**
 * The kept builds: recorded as hard links (a new build written over the
 * current archive leaves them intact), at most 3, and put back byte for byte.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { LockEntry, LockFile } from '../../tasks/images/lock.ts';
import { buildName, historyOf, KEEP, recordGood, restoreBuild } from '../../tasks/nightly/history.ts';

let scratch = '';
after(() => rmSync(scratch, { recursive: true, force: true }));

test('history: the last 3 good builds kept beside the current archive, and any of them put back', async () => {
  scratch = mkdtempSync(join(tmpdir(), 'armlab-history-'));
  process.env.ARMLAB_IMAGES_CACHE = scratch;
  const archive = join(process.env.ARMLAB_IMAGES_CACHE, 'archives', 'frr_1.tar');
  await mkdir(join(process.env.ARMLAB_IMAGES_CACHE, 'archives'), { recursive: true });
  const lock: LockFile = { version: 1, images: {} };
  // As images:build writes an archive: a new file renamed over the old path.
  const build = async (n: number): Promise<LockEntry> => {
    await writeFile(`${archive}.part`, `build ${n}`);
    await rename(`${archive}.part`, archive);
    const entry: LockEntry = { name: 'frr', image: 'armlab/frr:1', imageId: `id${n}`, configDigest: `sha256:${n}0000000abc`, platform: 'linux/arm/v7', target: 'nodes', size: 7, archive, archiveSha256: 'x', inputHash: `i${n}`, builtAt: `2026-12-0${n}T03:15:02.123Z` };
    lock.images.frr = entry;
    return entry;
  };
  for (const n of [1, 2, 3, 4]) {
    await build(n);
    const kept = await recordGood(lock, 'frr');
    assert.equal(kept?.build, buildName(lock.images.frr!));
    assert.equal(await recordGood(lock, 'frr').then((e) => e?.build), kept?.build, 'recording the same build twice keeps one');
  }
  assert.equal(buildName(lock.images.frr!), '20261204T031502Z-40000000');
  const kept = historyOf(lock, 'frr');
  assert.equal(kept.length, KEEP);
  assert.deepEqual(kept.map((e) => readFileSync(e.archive, 'utf8')), ['build 4', 'build 3', 'build 2']);
  assert.ok(!existsSync(join(process.env.ARMLAB_IMAGES_CACHE, 'archives', 'history', 'frr', '20261201T031502Z-10000000.tar')), 'the 4th oldest is deleted');

  // A failed 5th build overwrote the current archive; the 3rd is put back.
  await build(5);
  const back = await restoreBuild(lock, 'frr', kept[1]!);
  assert.equal(back.archive, archive);
  assert.equal(readFileSync(archive, 'utf8'), 'build 3');
  assert.equal(lock.images.frr!.imageId, 'id3');
  writeFileSync(kept[1]!.archive, 'changed through the link');
  assert.equal(readFileSync(archive, 'utf8'), 'changed through the link', 'a hard link, not a copy');
  delete process.env.ARMLAB_IMAGES_CACHE;
});
