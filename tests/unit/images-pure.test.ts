import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProblemsError } from '../../tasks/core/errors.ts';
import { buildLogLine } from '../../tasks/images/build.ts';
import { selectRecipes } from '../../tasks/images/command.ts';
import { describeApplyFailure, pickTag } from '../../tasks/images/git-source.ts';
import { buildOrder, loadRecipe, parseRecipe, type Recipe } from '../../tasks/images/recipe.ts';

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
