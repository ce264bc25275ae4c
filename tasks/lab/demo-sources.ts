/**
 * The shipped recipes with their GitHub upstreams replaced by local fixtures of
 * the same layout (tests/fixtures/upstream/, each naming what it imitates),
 * reached through source mirrors as an air-gapped site would reach a copy:
 * meshnet and k8s-topo as git repositories, quagga as a release tarball. Same
 * Dockerfiles, same patches, same URLs; only the pins change, to the fixtures'
 * commits or to ranges over their tags (a fixture repository cannot have
 * upstream's commit ids). Used by the lab's
 * demo and by the image tests.
 *
 * Deterministic: the commits (fixed dates and author) and the tarball (sorted,
 * fixed mtime and owner, gzip without a timestamp) come out byte-identical every
 * time, so the recipes' input hashes, and every image cached under them, are
 * the same wherever and whenever the fixtures are made.
 */
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { $, run } from '../core/local.ts';

const REPO = join(import.meta.dirname, '..', '..');
const FIXTURES = join(REPO, 'tests', 'fixtures', 'upstream');
const FIXED_DATE = '2026-01-01T00:00:00Z';

type RecipeDoc = { source: Record<string, Record<string, unknown>> };

/** Copy a shipped recipe, changing its document (e.g. its upstream source). */
export async function recipeWithSource(imagesDir: string, name: string, change: (doc: RecipeDoc) => void): Promise<void> {
  await cp(join(REPO, 'images', name), join(imagesDir, name), { recursive: true });
  const file = join(imagesDir, name, 'image.yaml');
  const doc = load(await readFile(file, 'utf8')) as RecipeDoc;
  change(doc);
  await writeFile(file, dump(doc));
}

/** A one-commit repository of `files` (under `under`), tagged `tag`: its commit. */
async function gitRepo(dir: string, files: string, tag: string, under = ''): Promise<string> {
  const env = { ...process.env, GIT_AUTHOR_DATE: FIXED_DATE, GIT_COMMITTER_DATE: FIXED_DATE };
  const git = (args: string[]) => $({ env })`git -C ${dir} -c user.name=armlab -c user.email=armlab@example.invalid -c core.fileMode=true ${args}`;
  await mkdir(join(dir, under), { recursive: true });
  await cp(files, join(dir, under), { recursive: true });
  await git(['init', '--quiet', '-b', 'main']);
  await git(['add', '-A']);
  await git(['commit', '--quiet', '-m', 'fixture']);
  await git(['tag', tag]);
  return (await git(['rev-parse', 'HEAD'])).stdout.trim();
}

export interface FixtureRecipes {
  imagesDir: string;
  patchesDir: string;
  /** quagga's release tarball */
  tarball: string;
  /** upstream URL → fixture, as images.sourceMirrors takes them */
  mirrors: Record<string, string>;
}

const upstreamOf = async (recipe: string, kind: 'git' | 'tarball') => ((load(await readFile(join(REPO, 'images', recipe, 'image.yaml'), 'utf8')) as RecipeDoc).source[kind] as { url: string }).url;

/** Every shipped recipe under work/images (base, golang, frr as shipped), fixture sources under work/. */
export async function fixtureRecipes(work: string): Promise<FixtureRecipes> {
  const imagesDir = join(work, 'images');
  const patchesDir = join(work, 'patches');
  await cp(join(REPO, 'patches'), patchesDir, { recursive: true });
  // The recipes whose inputs are Debian's packages need no fixture (Debian's mirror is reachable).
  for (const name of ['base', 'golang', 'frr']) await cp(join(REPO, 'images', name), join(imagesDir, name), { recursive: true });
  const mirrors: Record<string, string> = {};
  // meshnet and k8s-topo follow a semver range over their fixture's tags (v0.1.0 is its one commit),
  // so that a new upstream tag is something a nightly picks up; init-wait stays pinned to the commit.
  const followTags = (d: RecipeDoc) => {
    delete d.source.git!.ref;
    d.source.git!.range = '^0.1.0';
  };
  await gitRepo(join(work, 'repos', 'kne'), join(FIXTURES, 'meshnet'), 'v0.1.0', 'third_party/meshnet');
  mirrors[await upstreamOf('meshnet', 'git')] = join(work, 'repos', 'kne');
  await recipeWithSource(imagesDir, 'meshnet', followTags);
  const topo = await gitRepo(join(work, 'repos', 'k8s-topo'), join(FIXTURES, 'k8s-topo'), 'v0.1.0');
  mirrors[await upstreamOf('k8s-topo', 'git')] = join(work, 'repos', 'k8s-topo');
  await recipeWithSource(imagesDir, 'k8s-topo', followTags);
  await recipeWithSource(imagesDir, 'init-wait', (d) => Object.assign(d.source.git!, { ref: topo }));
  // A release tarball has one top folder, as quagga-1.2.4.tar.gz does.
  const tarball = join(work, 'quagga-fixture.tar.gz');
  await run`sh -c ${'tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --transform "s,^quagga,quagga-fixture," -C "$1" -cf - quagga | gzip -n > "$2"'} sh ${FIXTURES} ${tarball}`;
  mirrors[await upstreamOf('quagga', 'tarball')] = tarball;
  await cp(join(REPO, 'images', 'quagga'), join(imagesDir, 'quagga'), { recursive: true });
  return { imagesDir, patchesDir, tarball, mirrors };
}
