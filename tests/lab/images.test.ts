/**
 * images:build against a real Docker Engine (Debian docker.io) in its own
 * network namespace with no route out. base and frr are built for real from
 * Debian's packages; `tool` stands in for the GitHub-hosted recipes (a local
 * fixture repository with tags, a semver range and a patch).
 */
import assert from 'node:assert/strict';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { run } from '../../tasks/core/local.ts';
import { inspectArchive } from '../../tasks/images/archive.ts';
import { UNSAFE_IO_CONFIG, UNSAFE_IO_TEXT } from '../../tasks/images/slim.ts';
import type { LockFile } from '../../tasks/images/lock.ts';
import { startEngine, type TestEngine } from '../helpers/docker.ts';
import { armlab, makeTestDir } from '../helpers/lab.ts';

const PATCH = (from: string, to: string) => `--- a/config.txt\n+++ b/config.txt\n@@ -1 +1 @@\n-greeting=${from}\n+greeting=${to}\n`;

describe('images:build (real Docker Engine, BuildKit, armv7 emulation)', { timeout: 1_500_000 }, () => {
  let engine: TestEngine;
  let work: string;
  let imagesDir: string;
  let patchesDir: string;
  let repo: string;
  const env = () => ({ ...process.env, ARMLAB_IMAGES_CACHE: join(work, 'cache') });
  const build = (extra: string[] = []) =>
    armlab(['images:build', '--docker-host', engine.host, '--images-dir', imagesDir, '--patches-dir', patchesDir, ...extra], { timeoutMs: 1_200_000, env: env() });
  const lock = async () => JSON.parse(await readFile(join(work, 'cache', 'images.lock.json'), 'utf8')) as LockFile;
  const row = (out: string, image: string) => out.split('\n').find((l) => l.startsWith(`${image} `)) ?? '';

  before(async () => {
    work = await makeTestDir();
    imagesDir = join(work, 'images');
    patchesDir = join(work, 'patches');
    repo = join(work, 'repos', 'tool');
    await mkdir(join(patchesDir, 'tool'), { recursive: true });
    await cp('images/base', join(imagesDir, 'base'), { recursive: true });
    await cp('images/frr', join(imagesDir, 'frr'), { recursive: true });
    for (const f of ['tool', 'wrongarch', 'amd64bin']) await cp(`tests/fixtures/images/${f}`, join(imagesDir, f), { recursive: true });
    await rm(join(imagesDir, 'tool', 'image.yaml.in'));
    await writeFile(join(imagesDir, 'tool', 'image.yaml'), (await readFile('tests/fixtures/images/tool/image.yaml.in', 'utf8')).replace('@REPO@', repo));
    // This machine's binary, for the fixtures that must be refused.
    await run`gcc -static -O2 -o ${join(imagesDir, 'amd64bin', 'hello')} tests/fixtures/images/hello.c`;
    // The fixture upstream: tags v1.0.0, v1.2.0, v2.0.0; ^1.0.0 must pick v1.2.0.
    await mkdir(repo, { recursive: true });
    const git = (args: string[]) => run`git -C ${repo} -c user.name=armlab -c user.email=armlab@example.invalid ${args}`;
    await git(['init', '--quiet', '-b', 'main']);
    await run`arm-linux-gnueabihf-gcc -static -O2 -o ${join(repo, 'hello')} tests/fixtures/images/hello.c`;
    await writeFile(join(repo, 'config.txt'), 'greeting=hello\n');
    for (const v of ['1.0.0', '1.2.0', '2.0.0']) {
      await writeFile(join(repo, 'VERSION'), `${v}\n`);
      await git(['add', '-A']);
      await git(['commit', '--quiet', '-m', `release ${v}`]);
      await git(['tag', `v${v}`]);
    }
    await writeFile(join(patchesDir, 'tool', '001-greeting.patch'), PATCH('hello', 'hi'));
    engine = await startEngine();
  });

  after(async () => {
    await engine?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('cold build: base and frr from Debian packages, tool from its fixture repo; all arm/v7 and locked', async () => {
    const r = await build(['--images', 'base,frr,tool']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const image of ['armlab/base:bookworm-1', 'armlab/frr:8.4.4-1', 'armlab/tool:1']) {
      assert.match(row(r.stdout, image), /\s+built\s+never built; arm\/v7, \/\S+ ARM EABI5 hard-float, [\d.]+ MB archive$/);
      const info = await engine.docker.getImage(image).inspect();
      assert.equal(`${info.Os}/${info.Architecture}/${(info as { Variant?: string }).Variant}`, 'linux/arm/v7');
    }
    const l = await lock();
    assert.deepEqual(Object.keys(l.images), ['base', 'frr', 'tool']);
    const tool = l.images.tool!;
    assert.equal(tool.imageId, (await engine.docker.getImage('armlab/tool:1').inspect()).Id);
    assert.equal(tool.platform, 'linux/arm/v7');
    // ^1.0.0 resolved to v1.2.0, and the patch was applied.
    assert.equal((await inspectArchive(tool.archive, '/opt/tool/VERSION')).file?.head.toString(), '1.2.0\n');
    assert.equal((await inspectArchive(tool.archive, '/opt/tool/config.txt')).file?.head.toString(), 'greeting=hi\n');
  });

  test('frr runs under armv7 emulation, with no network', async () => {
    const out = await run`docker -H ${engine.host} run --rm --network none armlab/frr:8.4.4-1 sh -c ${'/usr/lib/frr/zebra --version | head -n1; vtysh --help >/dev/null && echo vtysh-ok; uname -m'}`;
    assert.deepEqual(out.split('\n').filter((l) => !l.startsWith('WARNING')), ['zebra version 8.4.4', 'vtysh-ok', 'armv7l']);
  });

  test("frr's packages were installed by dpkg through the slim base's filter: their copyright files, no docs or manual pages", async () => {
    const out = await run`docker -H ${engine.host} run --rm --network none armlab/frr:8.4.4-1 sh -c ${'ls /usr/share/doc/frr; find /usr/share/man /usr/share/locale -type f ! -name locale.alias | wc -l; dpkg -L frr | grep -c "^/usr/share/man/"'}`;
    // dpkg still lists the manual pages it was told not to write.
    const [doc, count, listed] = out.split('\n').filter((l) => !l.startsWith('WARNING'));
    assert.deepEqual([doc, count], ['copyright', '0']);
    assert.ok(Number(listed) > 0, 'frr ships manual pages, which the filter kept out');
    // The base's dpkg setting for every later install in an image build: no fsync per unpacked file.
    const speedup = await run`docker -H ${engine.host} run --rm --network none armlab/frr:8.4.4-1 cat ${UNSAFE_IO_CONFIG}`;
    assert.equal(speedup.split('\n').filter((l) => !l.startsWith('WARNING')).join('\n') + '\n', UNSAFE_IO_TEXT);
  });

  test('second build: everything skipped, nothing rebuilt', async () => {
    const before = await lock();
    const r = await build(['--images', 'base,frr,tool']);
    assert.equal(r.code, 0, r.stdout);
    for (const image of ['armlab/base:bookworm-1', 'armlab/frr:8.4.4-1', 'armlab/tool:1']) assert.match(row(r.stdout, image), /\s+unchanged\s+inputs unchanged \([0-9a-f]{12}\), .* present$/);
    assert.doesNotMatch(r.stdout, /^building /m);
    assert.deepEqual(await lock(), before);
  });

  test('a changed patch rebuilds only its image', async () => {
    const before = await lock();
    await writeFile(join(patchesDir, 'tool', '001-greeting.patch'), PATCH('hello', 'hey'));
    const r = await build(['--images', 'base,frr,tool']);
    assert.equal(r.code, 0, r.stdout);
    assert.match(row(r.stdout, 'armlab/tool:1'), /\s+built\s+inputs changed;/);
    assert.match(row(r.stdout, 'armlab/base:bookworm-1'), /\s+unchanged\s/);
    assert.match(row(r.stdout, 'armlab/frr:8.4.4-1'), /\s+unchanged\s/);
    const after = await lock();
    assert.deepEqual(after.images.frr, before.images.frr);
    assert.notEqual(after.images.tool!.imageId, before.images.tool!.imageId);
    assert.equal((await inspectArchive(after.images.tool!.archive, '/opt/tool/config.txt')).file?.head.toString(), 'greeting=hey\n');
  });

  test('a stale patch fails the run before anything is built, naming the patch and the hunk', async () => {
    const before = await lock();
    await writeFile(join(patchesDir, 'tool', '001-greeting.patch'), PATCH('bonjour', 'salut'));
    await writeFile(join(imagesDir, 'base', 'Dockerfile'), `${await readFile('images/base/Dockerfile', 'utf8')}# touched, so base would rebuild\n`);
    try {
      const r = await build(['--images', 'base,frr,tool']);
      assert.equal(r.code, 1);
      assert.match(r.stdout, new RegExp(`^images:build: nothing built: .*patches/tool/001-greeting\\.patch no longer applies to ${repo}@v1\\.2\\.0: patch failed: config\\.txt:1; config\\.txt: patch does not apply \\(the hunk looks for "greeting=bonjour"\\)$`, 'm'));
      assert.doesNotMatch(r.stdout, /^building /m);
      assert.deepEqual(await lock(), before);
    } finally {
      await cp('images/base/Dockerfile', join(imagesDir, 'base', 'Dockerfile'));
      await writeFile(join(patchesDir, 'tool', '001-greeting.patch'), PATCH('hello', 'hey'));
    }
  });

  test('an amd64 result is refused: a recipe pinning amd64, or an amd64 main binary', async () => {
    // `docker import` always makes an amd64 image: the base a careless recipe might pin.
    await run`sh -c ${`tar -C ${join(imagesDir, 'amd64bin')} -c hello | /usr/bin/docker -H ${engine.host} import - armlab-fixture/amd64-base:1`}`;
    const wrong = await build(['--images', 'wrongarch']);
    assert.equal(wrong.code, 1);
    assert.match(row(wrong.stdout, 'armlab/wrongarch:1'), /\s+failed\s+armlab\/wrongarch:1: \/hello is an x86-64 ELF, not ARM EABI5 hard-float; refused \(the image tag and archive were removed\)$/);
    await assert.rejects(engine.docker.getImage('armlab/wrongarch:1').inspect());
    const bin = await build(['--images', 'amd64bin']);
    assert.equal(bin.code, 1);
    assert.match(row(bin.stdout, 'armlab/amd64bin:1'), /\s+failed\s+armlab\/amd64bin:1: \/hello is an x86-64 ELF, not ARM EABI5 hard-float; refused/);
    const l = await lock();
    assert.equal(l.images.wrongarch, undefined);
    assert.equal(l.images.amd64bin, undefined);
    await assert.rejects(engine.docker.getImage('armlab/amd64bin:1').inspect());
  });
});
