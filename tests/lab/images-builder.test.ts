/**
 * images:build on the inventory's builder node: Docker over SSH. The builder
 * is an sshd in the test dockerd's network namespace (loopback only) whose
 * sessions reach that dockerd; armlab runs inside the same namespace and
 * connects to it with the inventory's key and pinned host key.
 */
import assert from 'node:assert/strict';
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dump } from 'js-yaml';
import { run } from '../../tasks/core/local.ts';
import type { LockFile } from '../../tasks/images/lock.ts';
import { startEngine, type TestEngine } from '../helpers/docker.ts';
import { armlab, makeTestDir } from '../helpers/lab.ts';
import { startSshd, type TestSshd } from '../helpers/sshd.ts';

describe('images:build on the builder node over SSH (real Docker Engine behind a real sshd)', { timeout: 1_200_000 }, () => {
  let engine: TestEngine;
  let sshd: TestSshd;
  let work: string;
  let inv: string;
  const env = () => ({ ...process.env, ARMLAB_IMAGES_CACHE: join(work, 'cache') });

  before(async () => {
    work = await makeTestDir();
    await cp('images/base', join(work, 'images', 'base'), { recursive: true });
    engine = await startEngine();
    sshd = await startSshd(engine.netns, join(work, 'sshd'), { DOCKER_HOST: engine.host });
    inv = join(work, 'inventory.yaml');
    await writeFile(inv, dump({
      cluster: 'builder-test',
      connection: { user: 'root', port: sshd.port, privateKey: sshd.clientKey, knownHosts: sshd.knownHosts, become: false },
      nodes: [
        { name: 's1', address: '127.0.0.2', role: 'server' },
        { name: 'b1', address: '127.0.0.1', role: 'builder' },
      ],
      images: { builder: 'b1' },
    }));
  });

  after(async () => {
    await sshd?.stop();
    await engine?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('base is built by the builder node, verified, exported and locked on this side', async () => {
    const args = ['images:build', '--images-dir', join(work, 'images'), '--patches-dir', join(work, 'patches'), '--images', 'base'];
    // Debian inputs are fetched on this machine's side, outside the namespace (the build itself needs none).
    const fetched = await armlab([...args, '--docker-host', engine.host, '--check'], { timeoutMs: 900_000, env: env() });
    assert.equal(fetched.code, 0, fetched.stdout + fetched.stderr);
    const r = await armlab([...args, '--inventory', inv], { timeoutMs: 900_000, env: env(), netns: engine.netns });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^engine: builder b1 \(docker over ssh:\/\/root@127\.0\.0\.1:22022\), Docker \S+ on amd64$/m);
    assert.match(r.stdout, /^armlab\/base:bookworm-1\s+built\s+never built; arm\/v7, \/usr\/bin\/dpkg ARM EABI5 hard-float, [\d.]+ MB archive$/m);
    const info = await engine.docker.getImage('armlab/base:bookworm-1').inspect();
    const lock = JSON.parse(await readFile(join(work, 'cache', 'images.lock.json'), 'utf8')) as LockFile;
    assert.equal(lock.images.base!.imageId, info.Id);
  });

  test('a builder whose host key is not the pinned one is refused', async () => {
    await run`ssh-keygen -q -t ed25519 -N ${''} -f ${join(work, 'other_key')}`;
    const other = (await readFile(join(work, 'other_key.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
    await writeFile(sshd.knownHosts, `[127.0.0.1]:${sshd.port} ${other}\n`);
    const r = await armlab(['images:build', '--images-dir', join(work, 'images'), '--patches-dir', join(work, 'patches'), '--images', 'base', '--inventory', inv], { timeoutMs: 120_000, env: env(), netns: engine.netns });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /builder b1 \(\[127\.0\.0\.1\]:22022\): host key SHA256:\S+ is CHANGED from .*known_hosts; run preflight/);
    assert.match(r.stderr, /armlab: the Docker Engine at builder b1 \(docker over ssh:\/\/root@127\.0\.0\.1:22022\) does not answer/);
  });
});
