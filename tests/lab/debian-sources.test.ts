/**
 * Fetched Debian .debs made again beside a reader (tasks/images/debian.ts on
 * tasks/core/generations.ts), with this machine's real apt and Debian mirror: the
 * nightly's "Debian moved" path, which the demo's nightly takes only when sid moved
 * during the run. A debootstrap takes the same path at minutes a run; the .debs take
 * seconds.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { debsSource } from '../../tasks/images/debian.ts';
import { debFact } from '../../tasks/images/facts.ts';

test('debsSource: found again unchanged; fetched again into a new folder when the index moved, the copy handed out before still whole', { timeout: 600_000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'armlab-debs-'));
  const cacheBefore = process.env.ARMLAB_CACHE;
  process.env.ARMLAB_CACHE = join(root, 'cache');
  try {
    // All debsSource reads of its base is the dpkg status: empty, so hello comes with its dependencies.
    const base = { rootfs: join(root, 'base'), tar: join(root, 'base.tar'), identity: 'armlab-test-empty-base' };
    mkdirSync(join(base.rootfs, 'var/lib/dpkg'), { recursive: true });
    writeFileSync(join(base.rootfs, 'var/lib/dpkg/status'), '');
    const logged: string[] = [];
    const log = (m: string) => logged.push(m);

    const first = await debsSource(['hello'], base, log);
    assert.ok(first.debs.some((d) => /^hello_[^_]+_armhf\.deb$/.test(d)), first.debs.join(' '));
    assert.ok(first.debs.some((d) => /^libc6_/.test(d)), 'its dependencies too');
    assert.equal(logged.filter((m) => m.startsWith('fetching armhf packages hello')).length, 1);

    const facts = first.debs.map(debFact);
    assert.deepEqual(await debsSource(['hello'], base, log), first, 'found again');
    assert.deepEqual(await debsSource(['hello'], base, log, { expect: facts }), first, 'the index offers what is cached');
    assert.equal(logged.filter((m) => m.startsWith('fetching')).length, 1, logged.join('\n'));

    // The nightly's resolution says hello moved: fetched again, into a folder of its own.
    const moved = facts.map((f) => (f.startsWith('hello=') ? 'hello=0.0-armlab-moved' : f));
    const again = await debsSource(['hello'], base, log, { expect: moved });
    assert.match(logged.join('\n'), /^Debian's index moved since \S+ was fetched: fetching hello again$/m);
    assert.notEqual(again.dir, first.dir);
    assert.ok(again.debs.some((d) => /^hello_[^_]+_armhf\.deb$/.test(d)), again.debs.join(' '));
    for (const deb of first.debs) assert.ok(existsSync(join(first.dir, deb)), `${deb}: the copy handed out before is still there`);
    // Two generations kept (the current and the one before), beside the `current` link.
    const work = dirname(dirname(dirname(again.dir)));
    assert.equal(readdirSync(work).filter((e) => e.startsWith('g-')).length, 2, readdirSync(work).join(' '));
  } finally {
    if (cacheBefore === undefined) delete process.env.ARMLAB_CACHE;
    else process.env.ARMLAB_CACHE = cacheBefore;
    rmSync(root, { recursive: true, force: true });
  }
});
