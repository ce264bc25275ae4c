import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LockEntry } from '../../tasks/images/lock.ts';
import { selectEntries } from '../../tasks/import/command.ts';
import { containerdRef, parseImageList, planNode, platformOfDebianArch, repositoryOf, type NodeImage } from '../../tasks/import/plan.ts';
import { chooseCompression } from '../../tasks/import/compress.ts';
import { importCommand, parseProbe } from '../../tasks/import/remote.ts';

const D = (c: string) => `sha256:${c.repeat(64)}`;

const entry = (name: string, config: string, platform = 'linux/arm/v7', target: LockEntry['target'] = 'nodes'): LockEntry => ({
  name, image: `armlab/${name}:1`, imageId: D(config), configDigest: D(config), platform, target, size: 10, archive: `/c/${name}.tar`, archiveSha256: 'x', inputHash: 'h', builtAt: 't',
});

test('ctr names bare images under docker.io; repositories drop the tag', () => {
  assert.equal(containerdRef('armlab/frr:8.4.4-1'), 'docker.io/armlab/frr:8.4.4-1');
  assert.equal(containerdRef('alpine:3'), 'docker.io/library/alpine:3');
  assert.equal(containerdRef('registry.lan:5000/x/y:1'), 'registry.lan:5000/x/y:1');
  assert.equal(repositoryOf('registry.lan:5000/x/y:1'), 'registry.lan:5000/x/y');
  assert.equal(repositoryOf('docker.io/armlab/frr'), 'docker.io/armlab/frr');
  assert.equal(platformOfDebianArch('armhf'), 'linux/arm/v7');
  assert.equal(platformOfDebianArch('amd64'), 'linux/amd64');
  assert.equal(platformOfDebianArch('mips'), null);
});

test('`ctr images ls` is parsed, sizes with spaces and labels included', () => {
  const text = [
    'REF                         TYPE                                                 DIGEST                                                                  SIZE      PLATFORMS                LABELS',
    `docker.io/armlab/frr:1      application/vnd.docker.distribution.manifest.v2+json ${D('a')} 38.2 MiB  linux/arm/v7             io.cri-containerd.pinned=pinned`,
    `docker.io/library/alpine:3  application/vnd.oci.image.index.v1+json              ${D('b')} 3.4 MiB   linux/amd64,linux/arm/v7 -`,
  ].join('\n');
  assert.deepEqual(parseImageList(text), [
    { ref: 'docker.io/armlab/frr:1', digest: D('a'), platforms: ['linux/arm/v7'], labels: { 'io.cri-containerd.pinned': 'pinned' } },
    { ref: 'docker.io/library/alpine:3', digest: D('b'), platforms: ['linux/amd64', 'linux/arm/v7'], labels: {} },
  ]);
});

test('the probe output gives arch, decompressors, images and their config digests (gc labels, else the manifest)', () => {
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { digest: D('c') } })).toString('base64');
  const content = `${D('b')}\t1.2kB\t3 minutes\tcontainerd.io/gc.ref.content.config=${D('d')},containerd.io/gc.ref.content.l.0=${D('9')}`;
  const out = [
    'arch=armhf', 'has=gzip', '--- images', 'REF TYPE DIGEST SIZE PLATFORMS LABELS',
    `docker.io/armlab/frr:1 m ${D('a')} 1.0 MiB linux/arm/v7 -`, `docker.io/armlab/topo:1 m ${D('b')} 1.0 MiB linux/arm/v7 -`,
    '--- content', content, '--- manifests', `${D('a')} ${manifest}`, '',
  ].join('\n');
  const p = parseProbe(out);
  assert.equal(p.arch, 'armhf');
  assert.deepEqual(p.decompressors, ['gzip']);
  assert.equal(p.k3s, true);
  assert.equal(p.images[0]!.configDigest, D('c'), 'read from the manifest');
  assert.equal(p.images[1]!.configDigest, D('d'), 'from the gc label of ctr content ls');
  assert.equal(parseProbe('arch=armhf\nk3s=missing\n').k3s, false);
});

test('plan: import what is missing or different, pin, skip, refuse other platforms, purge wrong-platform copies', () => {
  const held: NodeImage[] = [
    { ref: 'docker.io/armlab/same:1', digest: D('1'), platforms: ['linux/arm/v7'], labels: { 'io.cri-containerd.pinned': 'pinned' }, configDigest: D('a') },
    { ref: 'docker.io/armlab/unpinned:1', digest: D('2'), platforms: ['linux/arm/v7'], labels: {}, configDigest: D('b') },
    { ref: 'docker.io/armlab/amd:1', digest: D('3'), platforms: ['linux/amd64'], labels: {}, configDigest: D('c') },
    { ref: 'docker.io/armlab/old:1', digest: D('4'), platforms: ['linux/arm/v7'], labels: {}, configDigest: D('0') },
    { ref: 'docker.io/armlab/amd:0.9', digest: D('5'), platforms: ['linux/amd64'], labels: {} },
    { ref: 'docker.io/armlab/same:0.9', digest: D('6'), platforms: ['linux/arm/v7'], labels: {} },
    { ref: 'docker.io/library/alpine:3', digest: D('7'), platforms: ['linux/amd64'], labels: {} },
  ];
  const entries = [entry('same', 'a'), entry('unpinned', 'b'), entry('amd', 'c'), entry('old', 'd'), entry('new', 'e'), entry('x86', 'f', 'linux/amd64')];
  const plan = planNode(entries, held, 'linux/arm/v7', false);
  assert.deepEqual(plan.actions.map((a) => [a.entry.name, a.kind, a.reason]), [
    ['same', 'skip', 'present with the same config digest, pinned'],
    ['unpinned', 'pin', 'present with the same config digest, not pinned'],
    ['amd', 'import', 'the node holds it for linux/amd64; replacing it'],
    ['old', 'import', `the node holds config ${D('0').slice(0, 19)}, the build is ${D('d').slice(0, 19)}`],
    ['new', 'import', 'not on the node'],
    ['x86', 'refuse', 'the archive is linux/amd64, the node is linux/arm/v7; nothing sent'],
  ]);
  assert.deepEqual(plan.purges, [{ ref: 'docker.io/armlab/amd:0.9', reason: 'linux/amd64, not linux/arm/v7' }]);
  assert.deepEqual(planNode(entries, held, 'linux/arm/v7', true).purges.map((p) => p.ref), ['docker.io/armlab/amd:0.9', 'docker.io/armlab/same:0.9']);
});

test('the import command always names the platform, and decompresses in the node pipe', () => {
  const plain = importCommand('linux/arm/v7', 'none', 'docker.io/armlab/frr:1', D('c')).text;
  assert.equal(plain.split('\n')[0]!.trim(), 'k3s ctr -n k8s.io images import --platform linux/arm/v7 - >/dev/null');
  assert.match(plain, /content get "\$digest" \| grep -qF sha256:c{64} \|\|/);
  assert.match(plain, /\*,linux\/arm\/v7,\*\) ;;/);
  assert.match(plain, /images label docker\.io\/armlab\/frr:1 io\.cri-containerd\.pinned=pinned/);
  assert.equal(importCommand('linux/arm/v7', 'zstd', 'docker.io/armlab/frr:1', D('c')).text.split('\n')[0], 'zstd -dc | k3s ctr -n k8s.io images import --platform linux/arm/v7 - >/dev/null');
});

test('--images picks node images from the lock; toolchains are never imported', () => {
  const all = [entry('frr', 'a'), entry('golang', 'b', 'linux/amd64', 'build-machine')];
  assert.deepEqual(selectEntries(all, null).map((e) => e.name), ['frr']);
  assert.throws(() => selectEntries(all, ['fr']), /--images: "fr" is not an image for the nodes in .*; did you mean "frr"\? \(built: frr\)/);
  assert.throws(() => selectEntries(all, ['golang']), /"golang" is not an image for the nodes/);
});

test('compression: auto takes zstd only where both ends have it; an explicit choice the node lacks is a problem', () => {
  assert.deepEqual(chooseCompression('auto', ['zstd', 'gzip'], ['zstd', 'gzip']), { use: 'zstd' });
  assert.deepEqual(chooseCompression('auto', ['gzip'], ['zstd', 'gzip']), { use: 'none' });
  assert.deepEqual(chooseCompression('none', [], []), { use: 'none' });
  assert.deepEqual(chooseCompression('gzip', ['gzip'], ['gzip']), { use: 'gzip' });
  assert.deepEqual(chooseCompression('zstd', ['gzip'], ['zstd']), { problem: '--compress zstd: the node has no zstd (apt-get install zstd), or use --compress auto' });
  assert.deepEqual(chooseCompression('zstd', ['zstd'], []), { problem: '--compress zstd: this machine has no zstd (apt-get install zstd)' });
});
