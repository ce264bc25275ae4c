/**
 * The shipped recipes with their GitHub upstreams served by local fixtures of
 * the same layout (tests/fixtures/upstream/) through source mirrors, as an
 * air-gapped site would: meshnet and k8s-topo as git repositories, quagga as a
 * release tarball. Same Dockerfiles, same patches, same URLs; only the pinned
 * commits change (a fixture repository cannot have upstream's commit ids).
 */
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { run } from '../../tasks/core/local.ts';

type RecipeDoc = { source: Record<string, Record<string, unknown>> };

/** Copy a shipped recipe, changing its document (e.g. its upstream source). */
export async function recipeWithSource(imagesDir: string, name: string, change: (doc: RecipeDoc) => void): Promise<void> {
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

export interface FixtureRecipes {
  imagesDir: string;
  patchesDir: string;
  /** quagga's release tarball */
  tarball: string;
  /** upstream URL → fixture, as images.sourceMirrors takes them */
  mirrors: Record<string, string>;
}

/** The same mirrors as --source-mirror flags. */
export const mirrorFlags = (mirrors: Record<string, string>) => Object.entries(mirrors).flatMap(([prefix, to]) => ['--source-mirror', `${prefix}=${to}`]);

const upstreamOf = async (recipe: string, kind: 'git' | 'tarball') => ((load(await readFile(join('images', recipe, 'image.yaml'), 'utf8')) as RecipeDoc).source[kind] as { url: string }).url;

/** base, golang, meshnet, k8s-topo and quagga under work/images, sources under work/. */
export async function fixtureRecipes(work: string): Promise<FixtureRecipes> {
  const imagesDir = join(work, 'images');
  const patchesDir = join(work, 'patches');
  await cp('patches', patchesDir, { recursive: true });
  for (const name of ['base', 'golang']) await cp(join('images', name), join(imagesDir, name), { recursive: true });
  const mirrors: Record<string, string> = {};
  const meshnet = await gitRepo(join(work, 'repos', 'kne'), 'tests/fixtures/upstream/meshnet', 'third_party/meshnet');
  mirrors[await upstreamOf('meshnet', 'git')] = join(work, 'repos', 'kne');
  await recipeWithSource(imagesDir, 'meshnet', (d) => Object.assign(d.source.git!, { ref: meshnet }));
  const topo = await gitRepo(join(work, 'repos', 'k8s-topo'), 'tests/fixtures/upstream/k8s-topo');
  mirrors[await upstreamOf('k8s-topo', 'git')] = join(work, 'repos', 'k8s-topo');
  for (const recipe of ['k8s-topo', 'init-wait']) await recipeWithSource(imagesDir, recipe, (d) => Object.assign(d.source.git!, { ref: topo }));
  // A release tarball has one top folder, as quagga-1.2.4.tar.gz does.
  const tarball = join(work, 'quagga-fixture.tar.gz');
  await run`tar -czf ${tarball} --transform ${'s,^quagga,quagga-fixture,'} -C tests/fixtures/upstream quagga`;
  mirrors[await upstreamOf('quagga', 'tarball')] = tarball;
  await cp(join('images', 'quagga'), join(imagesDir, 'quagga'), { recursive: true });
  return { imagesDir, patchesDir, tarball, mirrors };
}
