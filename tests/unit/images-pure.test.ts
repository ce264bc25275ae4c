import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProblemsError } from '../../tasks/core/errors.ts';
import { buildLogLine } from '../../tasks/images/build.ts';
import { selectRecipes } from '../../tasks/images/command.ts';
import { describeApplyFailure, pickTag } from '../../tasks/images/git-source.ts';
import { enginePlatformOf } from '../../tasks/images/engine.ts';
import { buildOrder, crossRecipeProblems, listRecipes, loadRecipe, parseRecipe, stageBuildArg, type Recipe } from '../../tasks/images/recipe.ts';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { goDirective, goVersionAtLeast, toolchainGoVersion, vendorGoModules } from '../../tasks/images/go-vendor.ts';

const recipe = (name: string, base?: string): Recipe => ({
  name, tag: '1', dir: `/x/${name}`, image: `armlab/${name}:1`, files: ['Dockerfile'], patches: [], verify: { binary: '/bin/sh' }, ...(base ? { base } : {}),
});

test('recipe errors name file, line and field', () => {
  const src = 'tag: "1"\nbase: Base\nsource:\n  git:\n    url: /repo\nverify:\n  binery: /x\nplatform: linux/arm64\n';
  try {
    parseRecipe(src, 'images/x/image.yaml');
    assert.fail('expected refusal');
  } catch (err) {
    assert.ok(err instanceof ProblemsError);
    assert.deepEqual(err.message.split('\n'), [
      'images/x/image.yaml:2 base: got "Base", expected the name of another recipe',
      'images/x/image.yaml:4 source.git: give exactly one of ref (a tag, branch or commit) or range (a semver range over the tags)',
      'images/x/image.yaml:6 verify.binary: is required: expected an absolute path inside the image',
      'images/x/image.yaml:7 verify.binery: unknown key; did you mean "binary"?',
      'images/x/image.yaml:8 platform: got "linux/arm64", expected "linux/arm/v7" (armlab builds armv7 hard-float images only)',
    ]);
  }
});

test('the shipped recipes parse', async () => {
  const base = await loadRecipe('images', 'patches', 'base');
  assert.equal(base.image, 'armlab/base:bookworm-1');
  assert.deepEqual(base.files, ['Dockerfile', 'image.yaml']);
  const frr = await loadRecipe('images', 'patches', 'frr');
  assert.equal(frr.base, 'base');
  assert.deepEqual(frr.source, { debs: { packages: ['frr'] } });
  assert.equal(frr.verify.binary, '/usr/bin/vtysh');
});

test('every shipped recipe parses; stages, paths, vendoring and tarballs are read as written', async () => {
  const names = await listRecipes('images');
  assert.deepEqual(names, ['base', 'frr', 'golang', 'init-wait', 'k8s-topo', 'meshnet', 'quagga']);
  const all = await Promise.all(names.map((n) => loadRecipe('images', 'patches', n)));
  assert.deepEqual(crossRecipeProblems(all), []);
  const [golang, topo, meshnet, quagga] = ['golang', 'k8s-topo', 'meshnet', 'quagga'].map((n) => all.find((r) => r.name === n)!);
  assert.equal(golang!.target, 'build-machine');
  assert.deepEqual(meshnet!.stages, ['golang']);
  assert.equal(meshnet!.source?.git?.path, 'third_party/meshnet');
  assert.equal(meshnet!.source?.git?.vendorGoModulesWith, 'golang');
  assert.match(quagga!.source?.tarball?.url ?? '', /quagga-1\.2\.4\.tar\.gz$/);
  assert.deepEqual(topo!.patches, ['patches/k8s-topo/001-armlab-images.patch', 'patches/k8s-topo/002-start-without-a-cluster.patch', 'patches/k8s-topo/003-d3-from-the-image.patch']);
  assert.deepEqual(buildOrder(all).map((r) => r.name), ['base', 'frr', 'golang', 'init-wait', 'k8s-topo', 'meshnet', 'quagga']);
  assert.deepEqual(selectRecipes(all, ['meshnet']).map((r) => r.name), ['base', 'golang', 'meshnet']);
  assert.equal(stageBuildArg('golang'), 'GOLANG_IMAGE');
  assert.equal(stageBuildArg('cross-gcc'), 'CROSS_GCC_IMAGE');
});

test("k8s-topo's patch names the images the init-wait, base, quagga and frr recipes make, at the same k8s-topo commit", async () => {
  const patch = await readFile('patches/k8s-topo/001-armlab-images.patch', 'utf8');
  const named = [...patch.matchAll(/^\+.*"(armlab\/[^"]+)"/gm)].map((m) => m[1]);
  const [initWait, ...rest] = await Promise.all(['init-wait', 'base', 'quagga', 'frr', 'k8s-topo'].map((n) => loadRecipe('images', 'patches', n)));
  assert.deepEqual(named, [initWait, ...rest.slice(0, 3)].map((r) => r!.image));
  assert.equal(initWait!.source?.git?.ref, rest[3]!.source?.git?.ref, 'init-wait comes from the same k8s-topo commit');
});

test('recipe problems that need the other recipes: stages, bases and vendoring toolchains', () => {
  const tool = { ...recipe('tool'), target: 'build-machine' as const };
  const bad = { ...recipe('x', 'tool'), stages: ['base'], source: { git: { url: '/r', ref: 'main', vendorGoModulesWith: 'tool' } } };
  assert.deepEqual(crossRecipeProblems([recipe('base'), tool, bad]).map((p) => `${p.path}: ${p.message}`), [
    'stages: "base" is not a build-machine recipe (set target: build-machine in images/base/image.yaml)',
    'base: "tool" is a build-machine recipe; a base must be built for the nodes',
    'source.git.vendorGoModulesWith: "tool" must also be listed in stages',
  ]);
  assert.throws(() => parseRecipe('tag: "1"\nsource:\n  debootstrap: {}\n  debs: {packages: [jq]}\nverify: {binary: /x}\n', 'r.yaml'), /r\.yaml:3 source\.debootstrap: makes a whole rootfs: it cannot be combined with debs, git or tarball/);
  assert.throws(() => parseRecipe('tag: "1"\nsource:\n  git: {url: /r, ref: main}\n  tarball: {url: /t.tgz}\nverify: {binary: /x}\n', 'r.yaml'), /r\.yaml:4 source\.tarball: give one upstream tree: git or tarball, not both/);
  assert.throws(() => parseRecipe('tag: "1"\nsource:\n  tarball: {url: /t.tgz, sha256: abc}\nverify: {binary: /x}\n', 'r.yaml'), /r\.yaml:3 source\.tarball\.sha256: got "abc", expected a sha256 in hex \(64 characters\)/);
});

test("the engine's architecture decides what build-machine recipes are built for", () => {
  assert.deepEqual(enginePlatformOf('amd64'), { platform: 'linux/amd64', architecture: 'amd64', debianArch: 'amd64', elfMachine: 'x86-64' });
  assert.equal(enginePlatformOf('arm').platform, 'linux/arm/v7');
  assert.throws(() => enginePlatformOf('s390x'), /the build engine runs on "s390x"; armlab knows amd64, arm64 and arm build machines/);
});

test('build order puts bases first; cycles and unknown bases are errors', () => {
  assert.deepEqual(buildOrder([recipe('frr', 'base'), recipe('topo', 'frr'), recipe('base')]).map((r) => r.name), ['base', 'frr', 'topo']);
  assert.throws(() => buildOrder([recipe('a', 'b'), recipe('b', 'a')]), /recipes form a cycle through "a"/);
  assert.throws(() => buildOrder([recipe('a', 'nope')]), /recipe "a" has base "nope", which is not a recipe in images\//);
  assert.deepEqual(selectRecipes([recipe('frr', 'base'), recipe('base'), recipe('other')], ['frr']).map((r) => r.name), ['base', 'frr']);
  assert.throws(() => selectRecipes([recipe('frr', 'base'), recipe('base')], ['fr']), /--images: no recipe "fr" in images\/; did you mean "frr"\?/);
});

test('a semver range picks the highest matching tag, with or without a v', () => {
  assert.equal(pickTag(['v1.0.0', 'v1.2.0', 'v2.0.0', 'nightly'], '^1.0.0'), 'v1.2.0');
  assert.equal(pickTag(['0.3.1', '0.3.9', '0.4.0'], '~0.3.0'), '0.3.9');
  assert.equal(pickTag(['v1.0.0'], '^2'), null);
});

test("git apply's report becomes one line naming the hunk", () => {
  const stderr = 'Checking patch config.txt...\nerror: while searching for:\ngreeting=bonjour\n\nerror: patch failed: config.txt:1\nerror: config.txt: patch does not apply\n';
  assert.equal(describeApplyFailure(stderr), 'patch failed: config.txt:1; config.txt: patch does not apply (the hunk looks for "greeting=bonjour")');
});

test('BuildKit step output arrives base64-encoded and is decoded; status lines pass through', () => {
  assert.equal(buildLogLine(Buffer.from('Setting up frr (8.4.4) ...\n').toString('base64')), 'Setting up frr (8.4.4) ...');
  assert.equal(buildLogLine('[sha256:83701] [2/6] COPY debs/ /tmp/debs/'), '[sha256:83701] [2/6] COPY debs/ /tmp/debs/');
  assert.equal(buildLogLine(undefined), '');
});

test('Go version gate: the toolchain recipe must provide at least the Go that go.mod asks for, or nothing is vendored', async () => {
  assert.equal(goDirective('module x\n\ngo 1.26.0\n\nrequire y v1\n'), '1.26.0');
  assert.equal(goDirective('module x\n'), null);
  assert.equal(toolchainGoVersion('go1.27.0\ntime 2026-02-01\n'), '1.27.0');
  assert.equal(goVersionAtLeast('1.27.0', '1.26.0'), true);
  assert.equal(goVersionAtLeast('1.26', '1.26.0'), true);
  assert.equal(goVersionAtLeast('1.9.2', '1.26.0'), false);
  assert.equal(goVersionAtLeast('1.26.0', '1.26.1'), false);
  // A toolchain rootfs laid out as Debian's golang packages are (/usr/lib/go -> go-1.NN), and the meshnet fork's go.mod.
  const dir = await mkdtemp(join(tmpdir(), 'armlab-u'));
  try {
    const rootfs = join(dir, 'rootfs');
    await mkdir(join(rootfs, 'usr/bin'), { recursive: true });
    await mkdir(join(rootfs, 'usr/lib/go-1.22'), { recursive: true });
    await writeFile(join(rootfs, 'usr/bin/go'), '');
    await writeFile(join(rootfs, 'usr/lib/go-1.22/VERSION'), 'go1.22.5\ntime 2024-07-02\n');
    await symlink('go-1.22', join(rootfs, 'usr/lib/go'));
    const tree = join(dir, 'src');
    await mkdir(tree);
    await writeFile(join(tree, 'go.mod'), 'module github.com/openconfig/kne/third_party/meshnet\n\ngo 1.26.0\n');
    await assert.rejects(vendorGoModules(tree, rootfs, 'golang', () => {}), {
      message: `${join(tree, 'go.mod')} asks for Go 1.26.0, but recipe "golang" provides Go 1.22.5: give that recipe a newer Go (images/golang/image.yaml), or pin an older upstream commit`,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
