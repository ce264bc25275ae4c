/**
 * The shipped recipes with their GitHub upstreams pointed at local fixtures of
 * the same layout (tests/fixtures/upstream/): meshnet and k8s-topo as git
 * repositories, quagga as a release tarball. Same Dockerfiles, same patches.
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
}

/** base, golang, meshnet, k8s-topo and quagga under work/images, sources under work/. */
export async function fixtureRecipes(work: string): Promise<FixtureRecipes> {
  const imagesDir = join(work, 'images');
  const patchesDir = join(work, 'patches');
  await cp('patches', patchesDir, { recursive: true });
  for (const name of ['base', 'golang']) await cp(join('images', name), join(imagesDir, name), { recursive: true });
  const meshnet = await gitRepo(join(work, 'repos', 'kne'), 'tests/fixtures/upstream/meshnet', 'third_party/meshnet');
  await recipeWithSource(imagesDir, 'meshnet', (d) => Object.assign(d.source.git!, { url: join(work, 'repos', 'kne'), ref: meshnet }));
  const topo = await gitRepo(join(work, 'repos', 'k8s-topo'), 'tests/fixtures/upstream/k8s-topo');
  await recipeWithSource(imagesDir, 'k8s-topo', (d) => Object.assign(d.source.git!, { url: join(work, 'repos', 'k8s-topo'), ref: topo }));
  // A release tarball has one top folder, as quagga-1.2.4.tar.gz does.
  const tarball = join(work, 'quagga-fixture.tar.gz');
  await run`tar -czf ${tarball} --transform ${'s,^quagga,quagga-fixture,'} -C tests/fixtures/upstream quagga`;
  await recipeWithSource(imagesDir, 'quagga', (d) => Object.assign(d.source.tarball!, { url: tarball }));
  return { imagesDir, patchesDir, tarball };
}
