/**
 * The shipped recipes whose upstream lives on GitHub (meshnet, k8s-topo, quagga)
 * built unchanged — same Dockerfile, same patches — from local fixtures with the
 * same layout (tests/fixtures/upstream/), against a real Docker Engine in its own
 * network namespace. golang, the build-machine toolchain meshnet is
 * cross-compiled with, is the real recipe, made from Debian's packages.
 */
import assert from 'node:assert/strict';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dump, load } from 'js-yaml';
import { run } from '../../tasks/core/local.ts';
import { inspectArchive } from '../../tasks/images/archive.ts';
import type { LockFile } from '../../tasks/images/lock.ts';
import { floatAbiOf } from '../../tasks/preflight/evaluate.ts';
import { startEngine, type TestEngine } from '../helpers/docker.ts';
import { armlab, makeTestDir } from '../helpers/lab.ts';

type RecipeDoc = { source: Record<string, Record<string, unknown>> };

/** Copy a shipped recipe, pointing its upstream source at a fixture. */
async function recipeWithSource(imagesDir: string, name: string, change: (doc: RecipeDoc) => void): Promise<void> {
  await cp(join('images', name), join(imagesDir, name), { recursive: true });
  const file = join(imagesDir, name, 'image.yaml');
  const doc = load(await readFile(file, 'utf8')) as RecipeDoc;
  change(doc);
  await writeFile(file, dump(doc));
}

async function gitRepo(dir: string, files: string, under = ''): Promise<string> {
  const git = (args: string[]) => run`git -C ${dir} -c user.name=armlab -c user.email=armlab@example.invalid ${args}`;
  await mkdir(join(dir, under), { recursive: true });
  await cp(files, join(dir, under), { recursive: true });
  await git(['init', '--quiet', '-b', 'main']);
  await git(['add', '-A']);
  await git(['commit', '--quiet', '-m', 'fixture']);
  return git(['rev-parse', 'HEAD']);
}

const hex = (b: Buffer) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');

describe('upstream recipes from fixtures (real Docker Engine, BuildKit, cross-compiling and armv7 emulation)', { timeout: 2_400_000 }, () => {
  let engine: TestEngine;
  let work: string;
  let imagesDir: string;
  const env = () => ({ ...process.env, ARMLAB_IMAGES_CACHE: join(work, 'cache') });
  const build = (images: string) =>
    armlab(['images:build', '--docker-host', engine.host, '--images-dir', imagesDir, '--patches-dir', join(work, 'patches'), '--images', images], { timeoutMs: 2_000_000, env: env() });
  const lock = async () => JSON.parse(await readFile(join(work, 'cache', 'images.lock.json'), 'utf8')) as LockFile;
  const row = (out: string, image: string) => out.split('\n').find((l) => l.startsWith(`${image} `)) ?? '';
  const docker = (args: string[]) => run`/usr/bin/docker -H ${engine.host} ${args}`;
  let tarball: string;

  before(async () => {
    work = await makeTestDir();
    imagesDir = join(work, 'images');
    await cp('patches', join(work, 'patches'), { recursive: true });
    for (const name of ['base', 'golang']) await cp(join('images', name), join(imagesDir, name), { recursive: true });
    const meshnet = await gitRepo(join(work, 'repos', 'kne'), 'tests/fixtures/upstream/meshnet', 'third_party/meshnet');
    await recipeWithSource(imagesDir, 'meshnet', (d) => Object.assign(d.source.git!, { url: join(work, 'repos', 'kne'), ref: meshnet }));
    const topo = await gitRepo(join(work, 'repos', 'k8s-topo'), 'tests/fixtures/upstream/k8s-topo');
    await recipeWithSource(imagesDir, 'k8s-topo', (d) => Object.assign(d.source.git!, { url: join(work, 'repos', 'k8s-topo'), ref: topo }));
    // A release tarball has one top folder, as quagga-1.2.4.tar.gz does.
    tarball = join(work, 'quagga-fixture.tar.gz');
    await run`tar -czf ${tarball} --transform ${'s,^quagga,quagga-fixture,'} -C tests/fixtures/upstream quagga`;
    await recipeWithSource(imagesDir, 'quagga', (d) => Object.assign(d.source.tarball!, { url: tarball }));
    engine = await startEngine();
  });

  after(async () => {
    await engine?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('cold build: golang for the build machine; meshnet, k8s-topo and quagga arm/v7 and locked', async () => {
    const r = await build('meshnet,k8s-topo,quagga');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(row(r.stdout, 'armlab/golang:sid-1'), /\s+built\s+never built; amd64 \(build machine\), \/usr\/bin\/go x86-64, [\d.]+ MB archive$/);
    assert.match(row(r.stdout, 'armlab/meshnet:kne-082578e-1'), /\s+built\s+never built; arm\/v7, \/meshnetd ARM EABI5 hard-float \(Go, GOARM=7\), [\d.]+ MB archive$/);
    for (const image of ['armlab/meshnet:kne-082578e-1', 'armlab/k8s-topo:4e517be-1', 'armlab/quagga:1.2.4-1']) {
      if (!image.includes('meshnet')) assert.match(row(r.stdout, image), /\s+built\s+never built; arm\/v7, \/\S+ ARM EABI5 hard-float, [\d.]+ MB archive$/);
      const info = await engine.docker.getImage(image).inspect();
      assert.equal(`${info.Os}/${info.Architecture}/${(info as { Variant?: string }).Variant}`, 'linux/arm/v7');
    }
    assert.match(r.stdout, /no sha256 pinned in the recipe; trusting it on first use, pin it with {2}sha256: [0-9a-f]{64}/);
    const l = await lock();
    assert.deepEqual(Object.keys(l.images), ['base', 'golang', 'k8s-topo', 'meshnet', 'quagga']);
    assert.equal(l.images.golang!.target, 'build-machine');
    assert.equal(l.images.golang!.platform, 'linux/amd64');
    assert.equal(l.images.meshnet!.target, 'nodes');
    // Cross-compiled for armv7 by Go: ARM ELF, no float ABI flag (static, no C), GOARM=7 in its build settings.
    for (const bin of ['/meshnet', '/meshnetd']) {
      const file = (await inspectArchive(l.images.meshnet!.archive, bin)).file!;
      assert.deepEqual(floatAbiOf(hex(file.head)), { machine: 'arm', abi: 'unknown' }, bin);
      assert.equal(file.goarm, '7', bin);
    }
  });

  test('meshnet: the binaries run on armv7; the entrypoint installs the plugin and a conflist delegating to flannel', async () => {
    const out = await docker(['run', '--rm', '--network', 'none', '--entrypoint', '/meshnetd', 'armlab/meshnet:kne-082578e-1']);
    assert.equal(out.split('\n').filter((l) => !l.startsWith('WARNING')).join('\n'), 'meshnetd linux/arm link=vxlan');
    const conf = join(work, 'node', 'net.d');
    const bin = join(work, 'node', 'bin');
    await mkdir(conf, { recursive: true });
    await mkdir(bin, { recursive: true });
    const flannel = { name: 'cbr0', cniVersion: '1.0.0', plugins: [{ type: 'flannel', delegate: { hairpinMode: true, forceAddress: true, isDefaultGateway: true } }, { type: 'portmap', capabilities: { portMappings: true } }] };
    await writeFile(join(conf, '10-flannel.conflist'), JSON.stringify(flannel));
    const install = await docker(['run', '--rm', '--network', 'none', '-v', `${conf}:/etc/cni/net.d`, '-v', `${bin}:/opt/cni/bin`, 'armlab/meshnet:kne-082578e-1', '--install-only']);
    assert.match(install, /meshnet: installed \/opt\/cni\/bin\/meshnet; \/etc\/cni\/net\.d\/00-meshnet\.conflist delegates to 10-flannel\.conflist/);
    const conflist = JSON.parse(await readFile(join(conf, '00-meshnet.conflist'), 'utf8'));
    assert.deepEqual(conflist, { cniVersion: '1.0.0', name: 'meshnet', plugins: [{ type: 'meshnet', name: 'meshnet', ipam: {}, dns: {}, delegate: flannel.plugins[0] }] });
    const plugin = await readFile(join(bin, 'meshnet'));
    assert.equal(floatAbiOf(hex(plugin.subarray(0, 64))).machine, 'arm');
    assert.match(plugin.toString('latin1'), /\tGOARM=7\n/);
  });

  test('k8s-topo: Python dependencies import under armv7, the patch points pods at armlab images, nginx config is valid', async () => {
    const out = await docker(['run', '--rm', '--network', 'none', 'armlab/k8s-topo:4e517be-1', 'sh', '-c', 'k8s-topo --images && nginx -t 2>&1 | tail -n1 && uname -m']);
    assert.deepEqual(out.split('\n').filter((l) => !l.startsWith('WARNING')), [
      'host=armlab/base:bookworm-1 qrtr=armlab/quagga:1.2.4-1 config=/etc/quagga/Quagga.conf',
      'client=x',
      'nginx: configuration file /etc/nginx/nginx.conf test is successful',
      'armv7l',
    ]);
  });

  test('quagga: built from the tarball under emulation, runs with only runtime libraries', async () => {
    const out = await docker(['run', '--rm', '--network', 'none', 'armlab/quagga:1.2.4-1', 'sh', '-c', 'zebra --version; vtysh; id quagga >/dev/null && echo user-ok; command -v gcc || echo no-gcc']);
    assert.deepEqual(out.split('\n').filter((l) => !l.startsWith('WARNING')), ['zebra version fixture (config in /etc/quagga)', 'vtysh with readline 8.2', 'user-ok', 'no-gcc']);
  });

  test('second build: all skipped; a tarball that no longer matches its pinned sha256 stops the run before any build', async () => {
    const again = await build('meshnet,k8s-topo,quagga');
    assert.equal(again.code, 0, again.stdout);
    for (const image of ['armlab/golang:sid-1', 'armlab/meshnet:kne-082578e-1', 'armlab/k8s-topo:4e517be-1', 'armlab/quagga:1.2.4-1']) assert.match(row(again.stdout, image), /\s+unchanged\s+/);
    const before = await lock();
    const pinned = '0'.repeat(64);
    await recipeWithSource(imagesDir, 'quagga', (d) => Object.assign(d.source.tarball!, { url: tarball, sha256: pinned }));
    const r = await build('quagga');
    assert.equal(r.code, 1);
    assert.match(r.stdout, new RegExp(`^images:build: nothing built: ${tarball.replace(/[.]/g, '\\.')}: sha256 is [0-9a-f]{64}, but the recipe pins ${pinned}; refusing an upstream tarball that changed$`, 'm'));
    assert.doesNotMatch(r.stdout, /^building /m);
    assert.deepEqual(await lock(), before);
  });
});
