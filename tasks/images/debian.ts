/**
 * Debian inputs for image recipes, fetched on this machine's side (the build
 * engine has no network): a debootstrap rootfs (tar), or the armhf
 * .debs a package set needs on top of a base rootfs. Cached by their inputs.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withBuildLock } from '../core/build-lock.ts';
import { currentGeneration, makeGeneration } from '../core/generations.ts';
import { run } from '../core/local.ts';
import { queuePerKey } from '../core/schedule.ts';
import { debianMirror, debootstrapMinbase } from '../lab/golden.ts';
import { privateAptState } from './apt-private.ts';
import { debFact } from './facts.ts';
import { sourcesCacheDir } from './lock.ts';
import { slimIdentity, slimRootfs } from './slim.ts';

const hash = (v: unknown) => createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 16);

export interface RootfsSource {
  /** Directory holding the unpacked rootfs (its dpkg status serves images built on it). */
  rootfs: string;
  tar: string;
  /** What identifies the content, for input hashes. */
  identity: string;
}

/**
 * debootstrap minbase (+ packages), kept unpacked and as a tar: armhf for node
 * images, the build machine's own architecture for toolchain images.
 */
export async function debootstrapSource(suite: string, packages: string[], arch: string, log: (m: string) => void, opts: FreshnessOptions = {}): Promise<RootfsSource> {
  // Not the mirror: the identity names the package versions, whichever mirror served them (a
  // proxy or a local copy of Debian's gives the same rootfs, and the same input hashes).
  // Slimmed by slimRootfs: what it writes is part of what the rootfs is.
  const key = `debootstrap:slim-${hash(slimIdentity())}:${arch}:${suite}:${[...packages].sort().join(',')}`;
  const dir = join(sourcesCacheDir(), `debootstrap-${hash(key)}`);
  // Recipes prepared at once, or commands and test files running side by side, may want
  // the same rootfs: the second finds it made.
  return rootfsMaking(dir, () => withBuildLock(`${dir}.lock`, () => cachedOrNewRootfs(key, dir, suite, packages, arch, log, opts)));
}

const rootfsMaking = queuePerKey();

async function cachedOrNewRootfs(key: string, dir: string, suite: string, packages: string[], arch: string, log: (m: string) => void, opts: FreshnessOptions): Promise<RootfsSource> {
  const mirror = await debianMirror();
  // The identity names the package versions too: a rootfs made again from a newer index is another input.
  const sourceIn = async (generation: string) => {
    const rootfs = join(generation, 'rootfs');
    const installed = await installedPackages(rootfs);
    return { source: { rootfs, tar: join(generation, 'rootfs.tar'), identity: `${key}@${hash(installed)}` }, installed };
  };
  // 'complete': a cache of the layout before generations.
  const cached = await currentGeneration(dir, ['complete']);
  if (cached) {
    const { source, installed } = await sourceIn(cached);
    if (!opts.expect || sameList(installed, opts.expect)) return source;
    log(`Debian's index moved since ${cached} was made: debootstrap again`);
  }
  log(`debootstrap ${arch} ${suite} for an image base (a few minutes, cached in ${dir})`);
  const made = await makeGeneration(dir, async (generation) => {
    const rootfs = join(generation, 'rootfs');
    const tar = join(generation, 'rootfs.tar');
    await debootstrapMinbase(arch, suite, packages, rootfs, mirror);
    // An image needs no package cache or apt lists; the machine-id is per container.
    await run`sh -c ${`rm -rf ${rootfs}/var/cache/apt/archives/*.deb ${rootfs}/var/lib/apt/lists/* && : > ${rootfs}/etc/machine-id`}`;
    await slimRootfs(rootfs);
    await run`tar -C ${rootfs} --numeric-owner -cf ${tar} .`;
  });
  return (await sourceIn(made)).source;
}

export interface FreshnessOptions {
  /** name=version the index offers now (the nightly's resolution): a cached source that differs is made again. */
  expect?: string[];
}

const sameList = (a: string[], b: string[]) => JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());

export interface DebsSource {
  dir: string;
  debs: string[];
  identity: string;
}

/** The armhf .debs `packages` need beyond what `baseRootfs` has installed, via this machine's apt. */
export async function debsSource(packages: string[], base: RootfsSource, log: (m: string) => void, opts: FreshnessOptions = {}): Promise<DebsSource> {
  const key = hash({ packages: [...packages].sort(), base: base.identity });
  const work = join(sourcesCacheDir(), `debs-${key}`);
  return withBuildLock(`${work}.lock`, () => cachedOrNewDebs(packages, base, work, log, opts));
}

async function cachedOrNewDebs(packages: string[], base: RootfsSource, work: string, log: (m: string) => void, opts: FreshnessOptions): Promise<DebsSource> {
  const mirror = await debianMirror();
  const debsIn = async (generation: string) => {
    const dir = join(generation, 'cache', 'archives');
    const debs = (await readdir(dir)).filter((f) => f.endsWith('.deb')).sort();
    return { dir, debs, identity: `debs:${debs.join(',')}` };
  };
  const cached = await currentGeneration(work, ['complete']);
  if (cached) {
    const source = await debsIn(cached);
    if (!opts.expect || sameList(source.debs.map(debFact), opts.expect)) return source;
    log(`Debian's index moved since ${cached} was fetched: fetching ${packages.join(' ')} again`);
  }
  const made = await makeGeneration(work, async (generation) => {
    // Judged against the base's dpkg status: only what the base lacks is fetched.
    const apt = await privateAptState(generation, { arch: 'armhf', mirror, suite: 'bookworm', status: join(base.rootfs, 'var/lib/dpkg/status') });
    log(`fetching armhf packages ${packages.join(' ')} and their dependencies`);
    await run`apt-get ${apt} -qq update`;
    await run`apt-get ${apt} -qq -y --download-only --no-install-recommends install ${packages}`;
  });
  return debsIn(made);
}

/** Pure: name=version of every installed package in a dpkg status file, sorted. */
export function parseDpkgStatus(text: string): string[] {
  const out: string[] = [];
  for (const stanza of text.split(/\n\n+/)) {
    const field = (name: string) => new RegExp(`^${name}: (.+)$`, 'm').exec(stanza)?.[1];
    const pkg = field('Package');
    const version = field('Version');
    if (pkg && version && /\binstalled$/.test(field('Status') ?? '')) out.push(`${pkg}=${version}`);
  }
  return out.sort();
}

export async function installedPackages(rootfs: string): Promise<string[]> {
  return parseDpkgStatus(await readFile(join(rootfs, 'var/lib/dpkg/status'), 'utf8'));
}
