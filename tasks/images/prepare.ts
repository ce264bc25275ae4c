/**
 * Before any build: every selected image's build context, with its upstream
 * source fetched (on this machine's side) and its patches applied. A patch
 * that no longer applies stops the run here, before anything is built.
 */
import { copyFile, link, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RefusalError } from '../core/errors.ts';
import { run } from '../core/local.ts';
import { debootstrapSource, debsSource, type RootfsSource } from './debian.ts';
import { applyPatches, exportTree, patchDigest, resolveGit } from './git-source.ts';
import { imagesCacheDir } from './lock.ts';
import type { Recipe } from './recipe.ts';

export interface Prepared {
  recipe: Recipe;
  contextDir: string;
  /** What the upstream input is (commit, package versions, rootfs inputs). */
  sourceIdentity: string;
  patchesDigest: string;
  rootfs?: RootfsSource;
}

async function linkOrCopy(from: string, to: string): Promise<void> {
  await link(from, to).catch(() => copyFile(from, to));
}

export async function prepareAll(ordered: Recipe[], log: (m: string) => void): Promise<Map<string, Prepared>> {
  const prepared = new Map<string, Prepared>();
  for (const recipe of ordered) {
    const contextDir = join(imagesCacheDir(), 'contexts', recipe.name);
    await rm(contextDir, { recursive: true, force: true });
    await mkdir(contextDir, { recursive: true });
    await run`cp -a ${`${recipe.dir}/.`} ${contextDir}`;
    const source = recipe.source;
    if (recipe.patches.length > 0 && !(source && 'git' in source)) {
      throw new RefusalError(`patches/${recipe.name}/ has patches but images/${recipe.name}/image.yaml has no git source to apply them to`);
    }
    const entry: Prepared = { recipe, contextDir, sourceIdentity: 'none', patchesDigest: await patchDigest(recipe.patches) };
    if (source && 'debootstrap' in source) {
      const rootfs = await debootstrapSource(source.debootstrap.suite ?? 'bookworm', source.debootstrap.packages ?? [], log);
      await linkOrCopy(rootfs.tar, join(contextDir, 'rootfs.tar'));
      Object.assign(entry, { sourceIdentity: rootfs.identity, rootfs });
    } else if (source && 'debs' in source) {
      const base = recipe.base ? prepared.get(recipe.base)?.rootfs : undefined;
      if (!base) throw new RefusalError(`images/${recipe.name}: a debs source needs a base recipe whose source is debootstrap (its dpkg status decides what to fetch)`);
      const debs = await debsSource(source.debs.packages, base, log);
      await mkdir(join(contextDir, 'debs'), { recursive: true });
      for (const deb of debs.debs) await linkOrCopy(join(debs.dir, deb), join(contextDir, 'debs', deb));
      entry.sourceIdentity = debs.identity;
    } else if (source && 'git' in source) {
      const git = await resolveGit(source.git);
      const tree = join(contextDir, 'src');
      await exportTree(source.git, git.commit, tree);
      await applyPatches(tree, recipe.patches, `${source.git.url}@${git.ref}`);
      entry.sourceIdentity = git.identity;
    }
    prepared.set(recipe.name, entry);
  }
  return prepared;
}
