/**
 * Resolve every recipe's inputs to exact values without building: a git ref
 * or semver range to its commit (fetched into the same mirror a build uses),
 * a tarball to its sha256 (the pin, or a fresh download when unpinned),
 * Debian packages to the versions the index offers now, dependencies to
 * their own resolved hashes. A recipe that cannot be resolved says why.
 */
import { reasonOf } from '../core/errors.ts';
import { indexVersions } from '../images/debian-index.ts';
import { resolvedHash, type ResolvedInputs, type SourceFact } from '../images/facts.ts';
import { patchDigest, resolveGit } from '../images/git-source.ts';
import type { LockFile } from '../images/lock.ts';
import { recipeFilesDigest } from '../images/prepare.ts';
import type { Recipe } from '../images/recipe.ts';
import { fetchUrlOf, type SourceMirror } from '../images/source-mirror.ts';
import { fetchTarball } from '../images/tarball-source.ts';

export interface Resolution {
  inputs: ResolvedInputs | null;
  hash: string | null;
  error?: string;
}

export interface ResolveOptions {
  sourceMirrors: SourceMirror[];
  /** The engine's own platform (build-machine recipes are built for it). */
  buildPlatform: string;
  buildArch: string;
  log: (m: string) => void;
}

/** Debian facts: the packages of the last build, at the versions the index offers now. */
async function debianFact(kind: 'debootstrap' | 'debs', suite: string, arch: string, recorded: SourceFact | undefined): Promise<SourceFact> {
  const names = recorded && recorded.kind === kind ? recorded.packages : [];
  return { kind, suite, arch, packages: await indexVersions(suite, arch, names) };
}

async function sourceFacts(recipe: Recipe, lock: LockFile, opts: ResolveOptions): Promise<SourceFact[]> {
  const source = recipe.source ?? {};
  const recorded = lock.images[recipe.name]?.resolved?.sources ?? [];
  const facts: SourceFact[] = [];
  if (source.debootstrap) {
    const arch = recipe.target === 'build-machine' ? opts.buildArch : 'armhf';
    facts.push(await debianFact('debootstrap', source.debootstrap.suite ?? 'bookworm', arch, recorded.find((f) => f.kind === 'debootstrap')));
  }
  if (source.debs) facts.push(await debianFact('debs', 'bookworm', 'armhf', recorded.find((f) => f.kind === 'debs')));
  if (source.git) {
    const git = await resolveGit(source.git, fetchUrlOf(source.git.url, opts.sourceMirrors));
    facts.push({ kind: 'git', url: source.git.url, ref: git.ref, commit: git.commit, ...(source.git.path ? { path: source.git.path } : {}) });
  }
  if (source.tarball) {
    // A pinned tarball is what a build would accept; an unpinned one is downloaded again to see whether it moved.
    const sha256 = source.tarball.sha256 ?? (await fetchTarball(source.tarball, opts.log, fetchUrlOf(source.tarball.url, opts.sourceMirrors), { refresh: true })).sha256;
    facts.push({ kind: 'tarball', url: source.tarball.url, sha256 });
  }
  return facts;
}

/** Every recipe of `ordered` (bases first), resolved. */
export async function resolveAll(ordered: Recipe[], lock: LockFile, opts: ResolveOptions): Promise<Map<string, Resolution>> {
  const out = new Map<string, Resolution>();
  for (const recipe of ordered) {
    const deps = [...(recipe.base ? [recipe.base] : []), ...(recipe.stages ?? [])];
    const unresolved = deps.find((d) => !out.get(d)?.hash);
    if (unresolved) {
      out.set(recipe.name, { inputs: null, hash: null, error: `${recipe.base === unresolved ? 'base' : 'build stage'} ${unresolved} could not be resolved` });
      continue;
    }
    try {
      const inputs: ResolvedInputs = {
        files: await recipeFilesDigest(recipe),
        patches: await patchDigest(recipe.patches),
        sources: await sourceFacts(recipe, lock, opts),
        base: recipe.base ? out.get(recipe.base)!.hash : null,
        stages: (recipe.stages ?? []).map((s) => out.get(s)!.hash!),
        platform: recipe.target === 'build-machine' ? opts.buildPlatform : 'linux/arm/v7',
      };
      out.set(recipe.name, { inputs, hash: resolvedHash(inputs) });
    } catch (err) {
      out.set(recipe.name, { inputs: null, hash: null, error: reasonOf(err) });
    }
  }
  return out;
}
