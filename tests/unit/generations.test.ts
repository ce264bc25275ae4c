/**
 * Cached artefacts made again beside their readers (tasks/core/generations.ts): a
 * reader keeps the folder it was handed, a failed making changes nothing, and only
 * the current and previous folders stay.
 */
import assert from 'node:assert/strict';
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

test('generations: a making that fails leaves current as it was and nothing of its own', () =>
  inTemp(async (dir) => {
    const good = await makeGeneration(dir, making('good'));
    await assert.rejects(makeGeneration(dir, async (folder) => {
      writeFileSync(join(folder, 'rootfs.tar'), 'half');
      throw new Error('debootstrap failed');
    }), /debootstrap failed/);
    assert.equal(await currentGeneration(dir), good);
    assert.deepEqual(readdirSync(dir).sort(), ['current', good.slice(dir.length + 1)].sort());
  }));

test('generations: a killed making (no "complete") and the layout before generations are removed by the next making', () =>
  inTemp(async (dir) => {
    mkdirSync(join(dir, 'rootfs'), { recursive: true });
    writeFileSync(join(dir, 'complete'), 'old layout\n');
    mkdirSync(join(dir, 'g1-1'));
    assert.equal(await currentGeneration(dir), undefined, 'the old layout is not a generation');
    const made = await makeGeneration(dir, making('new'));
    assert.deepEqual(readdirSync(dir).sort(), ['current', made.slice(dir.length + 1)].sort());
  }));
