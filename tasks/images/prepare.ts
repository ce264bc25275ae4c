/**
 * Before any build: every selected image's build context, with its upstream
 * source fetched (on this machine's side) and its patches applied. A patch
 * that no longer applies stops the run here, before anything is built.
 */
import { createHash } from 'node:crypto';
import { copyFile, link, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RefusalError } from '../core/errors.ts';
import { run } from '../core/local.ts';
import { debootstrapSource, debsSource, installedPackages, type RootfsSource } from './debian.ts';
import { debFact, type SourceFact } from './facts.ts';
import { applyPatches, exportTree, patchDigest, resolveGit } from './git-source.ts';
import { vendorGoModules } from './go-vendor.ts';
import { fetchUrlOf, type SourceMirror } from './source-mirror.ts';
import { imagesCacheDir } from './lock.ts';
import type { Recipe } from './recipe.ts';
import { fetchTarball, unpackTarball } from './tarball-source.ts';

export interface Prepared {
  recipe: Recipe;
  contextDir: string;
  /** What the upstream input is (commit, tarball digest, package versions, rootfs inputs). */
  sourceIdentity: string;
  patchesDigest: string;
  /** The same inputs as exact values, for the lock file and the nightly. */
  facts: SourceFact[];
  rootfs?: RootfsSource;
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** The recipe folder's files as one digest (names and contents). */
export async function recipeFilesDigest(recipe: Recipe): Promise<string> {
  const files = await Promise.all(recipe.files.map(async (f) => [f, sha256(await readFile(join(recipe.dir, f)))]));
  return sha256(JSON.stringify(files));
}

export interface PrepareOptions {
  /** Debian architecture of the build engine, for build-machine (toolchain) recipes. */
  buildArch: string;
  log: (m: string) => void;
  /** Where git and tarball sources are fetched from instead of upstream. */
  sourceMirrors?: SourceMirror[];
  /** The nightly's resolved Debian facts per recipe: cached Debian sources that differ are fetched again. */
  debianExpect?: Map<string, { debootstrap?: string[]; debs?: string[] }>;
}

async function linkOrCopy(from: string, to: string): Promise<void> {
  await link(from, to).catch(() => copyFile(from, to));
}

/** A debootstrap recipe's rootfs (cached by its inputs: a second call finds it made). */
async function debootstrapOf(recipe: Recipe, opts: PrepareOptions): Promise<{ arch: string; rootfs: RootfsSource }> {
  const spec = recipe.source!.debootstrap!;
  const arch = recipe.target === 'build-machine' ? opts.buildArch : 'armhf';
  const expect = opts.debianExpect?.get(recipe.name)?.debootstrap;
  return { arch, rootfs: await debootstrapSource(spec.suite ?? 'bookworm', spec.packages ?? [], arch, opts.log, expect ? { expect } : {}) };
}

/**
 * The rootfs of every debootstrap recipe at once, before the rest: each takes minutes (armhf's second
 * stage runs emulated), and none needs another. All settle before an error is thrown.
 */
async function debootstrapAll(ordered: Recipe[], opts: PrepareOptions): Promise<void> {
  const made = await Promise.allSettled(ordered.filter((r) => r.source?.debootstrap).map((r) => debootstrapOf(r, opts)));
  const failed = made.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
}

async function prepareOne(recipe: Recipe, prepared: Map<string, Prepared>, opts: PrepareOptions): Promise<Prepared> {
  const contextDir = join(imagesCacheDir(), 'contexts', recipe.name);
  await rm(contextDir, { recursive: true, force: true });
  await mkdir(contextDir, { recursive: true });
  await run`cp -a ${`${recipe.dir}/.`} ${contextDir}`;
  const source = recipe.source ?? {};
  if (recipe.patches.length > 0 && !source.git && !source.tarball) {
    throw new RefusalError(`patches/${recipe.name}/ has patches but images/${recipe.name}/image.yaml has no git or tarball source to apply them to`);
  }
  const entry: Prepared = { recipe, contextDir, sourceIdentity: 'none', patchesDigest: await patchDigest(recipe.patches), facts: [] };
  const identities: string[] = [];
  if (source.debootstrap) {
    const { arch, rootfs } = await debootstrapOf(recipe, opts);
    await linkOrCopy(rootfs.tar, join(contextDir, 'rootfs.tar'));
    identities.push(rootfs.identity);
    entry.rootfs = rootfs;
    entry.facts.push({ kind: 'debootstrap', suite: source.debootstrap.suite ?? 'bookworm', arch, packages: await installedPackages(rootfs.rootfs) });
  }
  if (source.debs) {
    const base = recipe.base ? prepared.get(recipe.base)?.rootfs : undefined;
    if (!base) throw new RefusalError(`images/${recipe.name}: a debs source needs a base recipe whose source is debootstrap (its dpkg status decides what to fetch)`);
    const expect = opts.debianExpect?.get(recipe.name)?.debs;
    const debs = await debsSource(source.debs.packages, base, opts.log, expect ? { expect } : {});
    await mkdir(join(contextDir, 'debs'), { recursive: true });
    for (const deb of debs.debs) await linkOrCopy(join(debs.dir, deb), join(contextDir, 'debs', deb));
    identities.push(debs.identity);
    entry.facts.push({ kind: 'debs', suite: 'bookworm', arch: 'armhf', packages: debs.debs.map(debFact).sort() });
  }
  const tree = join(contextDir, 'src');
  if (source.git) {
    const from = fetchUrlOf(source.git.url, opts.sourceMirrors ?? []);
    const git = await resolveGit(source.git, from);
    await exportTree(source.git, git.commit, tree, from);
    await applyPatches(tree, recipe.patches, `${source.git.url}@${git.ref}`);
    identities.push(`${git.identity}${source.git.path ? `:${source.git.path}` : ''}`);
    entry.facts.push({ kind: 'git', url: source.git.url, ref: git.ref, commit: git.commit, ...(source.git.path ? { path: source.git.path } : {}) });
    const toolchain = source.git.vendorGoModulesWith;
    if (toolchain) {
      const rootfs = prepared.get(toolchain)?.rootfs;
      if (!rootfs) throw new RefusalError(`images/${recipe.name}: vendorGoModulesWith "${toolchain}" needs that recipe selected, with a debootstrap source`);
      await vendorGoModules(tree, rootfs.rootfs, toolchain, opts.log);
    }
  }
  if (source.tarball) {
    const tarball = await fetchTarball(source.tarball, opts.log, fetchUrlOf(source.tarball.url, opts.sourceMirrors ?? []));
    await unpackTarball(tarball, tree);
    await applyPatches(tree, recipe.patches, source.tarball.url);
    identities.push(tarball.identity);
    entry.facts.push({ kind: 'tarball', url: source.tarball.url, sha256: tarball.sha256 });
  }
  if (identities.length) entry.sourceIdentity = identities.join(' + ');
  return entry;
}

/**
 * Each recipe prepared on its own (the nightly): one whose source or patch
 * fails gets its error, as do the recipes that need it; the others go on.
 */
export async function prepareEach(ordered: Recipe[], opts: PrepareOptions): Promise<Map<string, Prepared | Error>> {
  const done = new Map<string, Prepared>();
  const out = new Map<string, Prepared | Error>();
  for (const recipe of ordered) {
    const failedDep = [recipe.base, ...(recipe.stages ?? [])].find((d) => d && out.get(d) instanceof Error);
    if (failedDep) {
      out.set(recipe.name, new Error(`${failedDep} could not be prepared`));
      continue;
    }
    try {
      const p = await prepareOne(recipe, done, opts);
      done.set(recipe.name, p);
      out.set(recipe.name, p);
    } catch (err) {
      out.set(recipe.name, err instanceof Error ? err : new Error(String(err)));
    }
  }
  return out;
}

export async function prepareAll(ordered: Recipe[], opts: PrepareOptions): Promise<Map<string, Prepared>> {
  await debootstrapAll(ordered, opts);
  const prepared = new Map<string, Prepared>();
  for (const recipe of ordered) prepared.set(recipe.name, await prepareOne(recipe, prepared, opts));
  return prepared;
}
