/**
 * images:import against a 3-host armhf lab: each host's own containerd (the
 * machine's, on k3s's socket path) reached through the k3s STAND-IN's `ctr`.
 * The images are docker-archives made by tests/helpers/archives.ts, with a
 * lock file like images:build writes.
 */
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { copyFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sh, type Command } from '../../tasks/core/shell.ts';
import { Connection } from '../../tasks/core/ssh.ts';
import { writeLock, type LockEntry } from '../../tasks/images/lock.ts';
import { labStopHost, labUp } from '../../tasks/lab/lab.ts';
import { readState } from '../../tasks/lab/state.ts';
import { loadInventory } from '../../tasks/inventory/load.ts';
import { writeFixtureArchive } from '../helpers/archives.ts';
import { startMirror, useMirror, type Mirror } from '../helpers/k3s-mirror.ts';
import { armlab, processesInHost, startTestLab, waitFor, type TestLab } from '../helpers/lab.ts';

const V1 = 'v1.31.12+k3s1';
const NODES = ['pi1', 'pi2', 'pi3'];

describe('images:import (lab of 3 armhf hosts, k3s stand-in, real containerd)', { timeout: 1_500_000 }, () => {
  let lab: TestLab;
  let mirror: Mirror;
  let inv: string;
  let cacheDir: string;
  const entries: Record<string, LockEntry> = {};
  const env = () => ({ ...process.env, ARMLAB_CACHE: join(lab.dir, 'cache'), ARMLAB_IMAGES_CACHE: cacheDir });
  const importImages = (args: string[] = [], timeoutMs = 600_000) => armlab(['images:import', '--inventory', inv, ...args], { timeoutMs, env: env() });
  const row = (out: string, node: string, image: string) => out.split('\n').find((l) => new RegExp(`^${node}\\s+${image.replace(/[.]/g, '\\.')}\\s`).test(l)) ?? '';
  async function onNode(name: string, command: Command, stdin?: NodeJS.ReadableStream): Promise<string> {
    const node = (await loadInventory(inv)).nodes.find((n) => n.name === name)!;
    const conn = await Connection.open(node);
    try {
      return (await conn.run(command, stdin ? { stdin: stdin as never, timeoutMs: 300_000 } : {})).stdout;
    } finally {
      conn.close();
    }
  }
  const imagesOn = (name: string) => onNode(name, sh`k3s ctr -n k8s.io images ls | awk 'NR > 1 { print $1, $(NF - 1), $NF }'`);
  const lockWith = (names: string[]) => writeLock({ version: 1, images: Object.fromEntries(names.map((n) => [n, entries[n]!])) }, join(cacheDir, 'images.lock.json'));

  before(async () => {
    lab = await startTestLab(NODES.map((name) => ({ name, userland: 'armhf' as const })));
    cacheDir = join(lab.dir, 'images-cache');
    mirror = await startMirror(join(lab.dir, 'mirror'), [V1], { stable: V1 });
    inv = lab.inventory;
    await useMirror(inv, mirror, V1);
    const installed = await armlab(['k3s:install', '--inventory', inv], { timeoutMs: 600_000, env: env() });
    assert.equal(installed.code, 0, installed.stdout + installed.stderr);
    for (const [name, tag, platform, bytes] of [
      ['net', '1', 'linux/arm/v7', 6e6],
      ['topo', '1', 'linux/arm/v7', 4e6],
      ['wrong', '1', 'linux/amd64', 1e6],
      ['big', '1', 'linux/arm/v7', 120e6],
    ] as const) {
      entries[name] = await writeFixtureArchive({ name, tag, platform, bytes }, join(cacheDir, 'archives', `${name}_${tag}.tar`));
    }
  });

  after(async () => {
    await mirror?.close();
    await lab?.down();
  });

  test('first import onto 3 hosts: present, right config digest and platform, pinned; the summary counts per node', async () => {
    await lockWith(['net', 'topo']);
    const r = await importImages();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const node of NODES) {
      for (const image of ['armlab/net:1', 'armlab/topo:1']) {
        assert.match(row(r.stdout, node, image), /\s+imported\s+[\d.]+ MB\s+[\d.]+\s+not on the node; verified sha256:[0-9a-f]{12} linux\/arm\/v7, pinned$/);
      }
      assert.match(r.stdout, new RegExp(`^${node}\\s+images:import\\s+changed\\s+imported 2, skipped 0, purged 0, failed 0$`, 'm'));
      const held = await imagesOn(node);
      assert.match(held, /^docker\.io\/armlab\/net:1 linux\/arm\/v7 io\.cri-containerd\.pinned=pinned$/m);
      assert.match(held, /^docker\.io\/armlab\/topo:1 linux\/arm\/v7 io\.cri-containerd\.pinned=pinned$/m);
      const config = await onNode(node, sh`k3s ctr -n k8s.io content get "$(k3s ctr -n k8s.io images ls name==docker.io/armlab/net:1 | awk 'NR == 2 { print $3 }')"`);
      assert.equal((JSON.parse(config) as { config: { digest: string } }).config.digest, entries.net!.configDigest);
    }
  });

  test('re-run: everything skipped with its reason, no image bytes sent', async () => {
    const r = await importImages();
    assert.equal(r.code, 0, r.stdout);
    for (const node of NODES) {
      assert.match(row(r.stdout, node, 'armlab/net:1'), /\s+skipped\s+-\s+-\s+present with the same config digest, pinned$/);
      assert.match(r.stdout, new RegExp(`^${node}\\s+images:import\\s+unchanged\\s+imported 0, skipped 2, purged 0, failed 0$`, 'm'));
    }
    assert.match(r.stdout, /images:import: ok$/m);
  });

  test('an amd64 image of the same name cached on one node is replaced, and an amd64 copy under another tag purged', async () => {
    const amd64 = await writeFixtureArchive({ name: 'net', tag: '1', platform: 'linux/amd64', bytes: 1e6 }, join(lab.dir, 'amd64-net.tar'));
    await onNode('pi2', sh`k3s ctr -n k8s.io images import --platform linux/amd64 - >/dev/null`, createReadStream(amd64.archive));
    const old = await writeFixtureArchive({ name: 'net', tag: '0.9', platform: 'linux/amd64', bytes: 1e6 }, join(lab.dir, 'amd64-net-old.tar'));
    await onNode('pi2', sh`k3s ctr -n k8s.io images import --platform linux/amd64 - >/dev/null`, createReadStream(old.archive));
    // ctr import replaced the ref's target and kept its labels: now an amd64 image that is pinned.
    assert.match(await imagesOn('pi2'), /^docker\.io\/armlab\/net:1 linux\/amd64 io\.cri-containerd\.pinned=pinned$/m);

    const r = await importImages();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(row(r.stdout, 'pi2', 'armlab/net:1'), /\s+imported\s+.*the node holds it for linux\/amd64; replacing it; verified/);
    assert.match(row(r.stdout, 'pi2', 'docker.io/armlab/net:0.9'), /\s+purged\s+-\s+-\s+linux\/amd64, not linux\/arm\/v7$/);
    assert.match(row(r.stdout, 'pi1', 'armlab/net:1'), /\s+skipped\s/);
    const held = await imagesOn('pi2');
    assert.match(held, /^docker\.io\/armlab\/net:1 linux\/arm\/v7 io\.cri-containerd\.pinned=pinned$/m);
    assert.doesNotMatch(held, /armlab\/net:0\.9/);
  });

  test('--compress gzip: compressed once here, decompressed in the node pipe; zstd where the node lacks it is refused', async () => {
    entries.packed = await writeFixtureArchive({ name: 'packed', tag: '1', platform: 'linux/arm/v7', bytes: 8e6 }, join(cacheDir, 'archives', 'packed_1.tar'));
    await lockWith(['packed']);
    const r = await importImages(['--compress', 'gzip']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const node of NODES) {
      const line = row(r.stdout, node, 'armlab/packed:1');
      assert.match(line, /\s+imported\s+([\d.]+) MB\s+.*not on the node; verified .*, pinned, gzip on the wire$/);
      const sent = Number(/\s([\d.]+) MB\s/.exec(line)![1]) * 1e6;
      assert.ok(sent < entries.packed.size * 0.75, `sent ${sent} of ${entries.packed.size}: half of the image is repetitive`);
      assert.match(await imagesOn(node), /^docker\.io\/armlab\/packed:1 linux\/arm\/v7 io\.cri-containerd\.pinned=pinned$/m);
    }
    const zstd = await importImages(['--compress', 'zstd', '--limit', 'pi1']);
    assert.equal(zstd.code, 0, zstd.stdout + zstd.stderr);
    assert.match(zstd.stdout, /^pi1\s+images:import\s+unchanged\s+imported 0, skipped 1/m, 'nothing to send, so nothing to refuse');
    await onNode('pi1', sh`k3s ctr -n k8s.io images rm docker.io/armlab/packed:1 >/dev/null`);
    const refused = await importImages(['--compress', 'zstd', '--limit', 'pi1']);
    assert.equal(refused.code, 1);
    assert.match(refused.stdout, /^pi1\s+images:import\s+failed\s+--compress zstd: the node has no zstd \(apt-get install zstd\), or use --compress auto$/m);
  });

  test('an amd64 archive is refused before any byte is sent; so is a truncated one', async () => {
    await lockWith(['net', 'wrong']);
    const wrong = await importImages(['--images', 'wrong']);
    assert.equal(wrong.code, 1);
    for (const node of NODES) {
      assert.match(row(wrong.stdout, node, 'armlab/wrong:1'), /\s+refused\s+-\s+-\s+the archive is linux\/amd64, the node is linux\/arm\/v7; nothing sent$/);
      assert.doesNotMatch(await imagesOn(node), /armlab\/wrong/);
    }

    const cut = join(cacheDir, 'archives', 'topo-cut.tar');
    await copyFile(entries.topo!.archive, cut);
    await truncate(cut, Math.floor(entries.topo!.size / 2));
    await writeLock({ version: 1, images: { topo: { ...entries.topo!, name: 'topo', image: 'armlab/topo:cut', archive: cut } } }, join(cacheDir, 'images.lock.json'));
    const r = await importImages();
    assert.equal(r.code, 1);
    for (const node of NODES) {
      assert.match(row(r.stdout, node, 'armlab/topo:cut'), /\s+refused\s+-\s+-\s+\S+topo-cut\.tar is corrupt or truncated: its sha256 is [0-9a-f]{12}…, the lock recorded [0-9a-f]{12}…; rebuild it with images:build; nothing sent$/);
      assert.doesNotMatch(await imagesOn(node), /armlab\/topo:cut/);
    }
  });

  test('an import that does not yield the built config digest is not pinned but removed', async () => {
    const odd = await writeFixtureArchive({ name: 'odd', tag: '1', platform: 'linux/arm/v7', bytes: 1e6 }, join(cacheDir, 'archives', 'odd_1.tar'));
    // The lock claims another config than the archive holds (as if the archive had been swapped and re-hashed).
    await writeLock({ version: 1, images: { odd: { ...odd, configDigest: `sha256:${'e'.repeat(64)}` } } }, join(cacheDir, 'images.lock.json'));
    const r = await importImages(['--limit', 'pi1']);
    assert.equal(r.code, 1);
    assert.match(row(r.stdout, 'pi1', 'armlab/odd:1'), /\s+failed\s+-\s+-\s+not verified: docker\.io\/armlab\/odd:1 points to a manifest without config sha256:e{64}; the partial ref was removed$/);
    assert.doesNotMatch(await imagesOn('pi1'), /armlab\/odd/);
  });

  test('a host stopped mid-stream: the others finish, it is reported; after a restart a re-run completes with no broken refs', async () => {
    await lockWith(['net', 'topo', 'big']);
    const running = importImages(['--images', 'big']);
    await waitFor('the import on pi3', async () => (await processesInHost(lab.dir, 'pi3', (a) => a.includes('import') && a.includes('-'))).length > 0, 120_000, 20);
    assert.ok(await labStopHost(lab.dir, 'pi3'));
    const r = await running;
    assert.equal(r.code, 1, r.stdout);
    assert.match(row(r.stdout, 'pi1', 'armlab/big:1'), /\s+imported\s/);
    assert.match(row(r.stdout, 'pi2', 'armlab/big:1'), /\s+imported\s/);
    assert.match(r.stdout, /^pi3\s+images:import\s+failed\s/m);
    assert.match(r.stdout, /images:import: FAILED on pi3$/m);

    // inv now carries the k3s section, so lab:up writes its inventory elsewhere.
    const up = await labUp((await readState(lab.dir))!.spec, join(lab.dir, 'inventory-restarted.yaml'));
    assert.ok(up.changes.some((c) => c.startsWith('started pi3')), up.changes.join('\n'));
    await waitFor('k3s on pi3', async () => /Ready/.test(await onNode('pi3', sh`k3s ctr -n k8s.io version >/dev/null && echo Ready`).catch(() => '')), 120_000, 500);
    const again = await importImages();
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(row(again.stdout, 'pi3', 'armlab/big:1'), /\s+imported\s/);
    assert.match(row(again.stdout, 'pi1', 'armlab/big:1'), /\s+skipped\s/);
    const check = await onNode('pi3', sh`k3s ctr -n k8s.io images check | awk 'NR > 1 { print $1, $4 }'`);
    for (const image of ['net:1', 'topo:1', 'big:1']) assert.match(check, new RegExp(`^docker\\.io/armlab/${image.replace('.', '\\.')} complete$`, 'm'));
    assert.doesNotMatch(check, /incomplete|missing/);
  });
});
