/**
 * Cached artefacts made again beside their readers (tasks/core/generations.ts): a
 * reader keeps the folder it was handed, a failed making changes nothing, and only
 * the current and previous folders stay.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { currentGeneration, makeGeneration } from '../../tasks/core/generations.ts';

const inTemp = async (fn: (dir: string) => Promise<void>) => {
  const root = mkdtempSync(join(tmpdir(), 'armlab-u'));
  try {
    await fn(join(root, 'debootstrap-x'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
};

const making = (text: string) => async (folder: string) => writeFileSync(join(folder, 'rootfs.tar'), text);

test('generations: made again, a reader keeps its folder; the one before it goes at the next making', () =>
  inTemp(async (dir) => {
    assert.equal(await currentGeneration(dir), undefined, 'nothing made yet');
    const first = await makeGeneration(dir, making('one'));
    assert.equal(await currentGeneration(dir), first);
    const second = await makeGeneration(dir, making('two'));
    assert.notEqual(second, first);
    assert.equal(await currentGeneration(dir), second);
    assert.equal(readFileSync(join(first, 'rootfs.tar'), 'utf8'), 'one', 'a reader handed the first folder still reads it');
    const third = await makeGeneration(dir, making('three'));
    assert.equal(existsSync(first), false, 'two makings later it is gone');
    assert.deepEqual(readdirSync(dir).sort(), ['current', ...[second, third].map((f) => f.slice(dir.length + 1))].sort());
    assert.equal(readFileSync(join((await currentGeneration(dir))!, 'rootfs.tar'), 'utf8'), 'three');
  }));

test('generations: a making that fails leaves current as it was; its folder stays for its logs until the next making', () =>
  inTemp(async (dir) => {
    const good = await makeGeneration(dir, making('good'));
    await assert.rejects(makeGeneration(dir, async (folder) => {
      writeFileSync(join(folder, 'debootstrap.log'), 'E: no route');
      throw new Error('debootstrap failed');
    }), /debootstrap failed/);
    assert.equal(await currentGeneration(dir), good);
    const failed = readdirSync(dir).filter((e) => e !== 'current' && join(dir, e) !== good);
    assert.equal(failed.length, 1);
    assert.equal(readFileSync(join(dir, failed[0]!, 'debootstrap.log'), 'utf8'), 'E: no route');
    const next = await makeGeneration(dir, making('next'));
    assert.deepEqual(readdirSync(dir).sort(), ['current', ...[good, next].map((f) => f.slice(dir.length + 1))].sort());
  }));

test('generations: a making that answers "same" keeps the current folder and every finished one', () =>
  inTemp(async (dir) => {
    const first = await makeGeneration(dir, making('one'));
    const second = await makeGeneration(dir, making('two'));
    const again = await makeGeneration(dir, async (folder) => (writeFileSync(join(folder, 'rootfs.tar'), 'two'), 'same'));
    assert.equal(again, second);
    assert.equal(await currentGeneration(dir), second);
    assert.deepEqual(readdirSync(dir).sort(), ['current', ...[first, second].map((f) => f.slice(dir.length + 1))].sort());
  }));

test('generations: a finished cache of the layout before generations is adopted as it is; an unfinished one is removed', () =>
  inTemp(async (dir) => {
    mkdirSync(join(dir, 'rootfs'), { recursive: true });
    writeFileSync(join(dir, 'rootfs.tar'), 'old');
    writeFileSync(join(dir, 'complete'), 'old layout\n');
    const adopted = await currentGeneration(dir, ['complete']);
    assert.ok(adopted);
    assert.equal(readFileSync(join(adopted, 'rootfs.tar'), 'utf8'), 'old', 'moved, not made again');
    assert.equal(await currentGeneration(dir, ['complete']), adopted);

    const other = join(dir, '..', 'tarball-y');
    mkdirSync(other);
    writeFileSync(join(other, 'source.tar.part'), 'cut short');
    mkdirSync(join(other, 'g-killed'));
    assert.equal(await currentGeneration(other, ['source.tar', 'sha256']), undefined, 'no finished cache to adopt');
    const made = await makeGeneration(other, making('new'));
    assert.deepEqual(readdirSync(other).sort(), ['current', made.slice(other.length + 1)].sort());
  }));

test('generations: an unfinished folder with something mounted in it is not walked into; the error says what to unmount', () =>
  inTemp(async (dir) => {
    const proc = join(dir, 'g-killed', 'rootfs', 'proc');
    mkdirSync(proc, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', 'armlab-test', proc]);
    try {
      writeFileSync(join(proc, 'keep'), 'mounted');
      await assert.rejects(makeGeneration(dir, making('new')), (err: Error) => {
        assert.equal(err.message, `cannot remove the unfinished cache folder ${join(dir, 'g-killed')}: ${proc} is mounted in it (left by a killed debootstrap?); unmount it (umount -R ${proc}), then run again`);
        return true;
      });
      assert.equal(readFileSync(join(proc, 'keep'), 'utf8'), 'mounted');
    } finally {
      execFileSync('umount', [proc]);
    }
    assert.ok(await makeGeneration(dir, making('new')));
  }));
