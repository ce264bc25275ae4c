/**
 * Upstream source from git: a ref, or the highest tag in a semver range,
 * exported at its commit into a work tree, then patched. Patches are checked
 * before anything is built; one that no longer applies names itself and the hunk.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import semver from 'semver';
import { $ } from '../core/local.ts';
import { RefusalError } from '../core/errors.ts';
import { imagesCacheDir } from './lock.ts';

export interface GitSpec {
  url: string;
  ref?: string | undefined;
  range?: string | undefined;
  /** Only this folder of the repository (e.g. a fork kept under third_party/). */
  path?: string | undefined;
}

export interface GitSource {
  commit: string;
  /** The tag or ref it came from. */
  ref: string;
  identity: string;
}

async function git(args: string[], cwd?: string): Promise<string> {
  const out = await $({ cwd: cwd ?? process.cwd() })`git ${args}`.nothrow();
  if (out.exitCode !== 0) throw new Error(`git ${args.join(' ')}: ${out.stderr.trim()}`);
  return out.stdout.trim();
}

function mirrorDir(url: string): string {
  return join(imagesCacheDir(), 'git', createHash('sha256').update(url).digest('hex').slice(0, 16));
}

/** Pure: the highest tag (v-prefixed or not) satisfying `range`. */
export function pickTag(tags: string[], range: string): string | null {
  const versions = tags.filter((t) => semver.valid(semver.clean(t) ?? ''));
  const best = semver.maxSatisfying(versions.map((t) => semver.clean(t)!), range);
  return best ? (versions.find((t) => semver.clean(t) === best) ?? null) : null;
}

/** `from`: where to fetch (a source mirror of spec.url, or spec.url); spec.url stays the identity. */
export async function resolveGit(spec: GitSpec, from = spec.url): Promise<GitSource> {
  const dir = mirrorDir(from);
  if (!existsSync(join(dir, 'HEAD'))) {
    await mkdir(dir, { recursive: true });
    await git(['clone', '--quiet', '--mirror', from, dir]).catch(async (err: Error) => {
      await rm(dir, { recursive: true, force: true });
      throw new RefusalError(`${spec.url}: cannot clone${from === spec.url ? '' : ` its mirror ${from}`}: ${err.message.split('\n').pop()}; without a route to it, map it to a local copy with a source mirror (images.sourceMirrors in the inventory, or --source-mirror PREFIX=PATH)`);
    });
  } else {
    // Tags through an explicit forced refspec, not --tags: with --tags, git neither prunes a tag upstream
    // deleted (a withdrawn release would stay in the range) nor moves a re-tagged one (the fetch fails with
    // "would clobber existing tag", every night, until the cache is removed by hand).
    await git(['--git-dir', dir, 'fetch', '--quiet', '--prune', 'origin', '+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*']);
  }
  let ref = spec.ref ?? '';
  if (spec.range) {
    const tags = (await git(['--git-dir', dir, 'tag', '--list'])).split('\n').filter(Boolean);
    const tag = pickTag(tags, spec.range);
    if (!tag) throw new RefusalError(`${spec.url}: no tag satisfies "${spec.range}" (tags: ${tags.join(', ') || 'none'})`);
    ref = tag;
  }
  const commit = await git(['--git-dir', dir, 'rev-parse', '--verify', `${ref}^{commit}`]).catch(() => {
    throw new RefusalError(`${spec.url}: no ref "${ref}"`);
  });
  return { commit, ref, identity: `git:${spec.url}@${commit}` };
}

/** Export the tree at `commit` (or its `path` folder) into `dest` (fresh). */
export async function exportTree(spec: GitSpec, commit: string, dest: string, from = spec.url): Promise<void> {
  await rm(dest, { recursive: true, force: true });
  await mkdir(dest, { recursive: true });
  const treeish = spec.path ? `${commit}:${spec.path}` : commit;
  const out = await $`git --git-dir ${mirrorDir(from)} archive --format=tar ${treeish} | tar -x -C ${dest}`.nothrow();
  if (out.exitCode !== 0) throw new RefusalError(`${spec.url}@${commit.slice(0, 12)}: cannot export ${spec.path ? `folder "${spec.path}"` : 'the tree'}: ${out.stderr.trim().split('\n')[0]}`);
}

/**
 * Apply patches in order to an exported tree. Trees are prepared for every
 * image before any build starts, so this is the "checked before anything is
 * built" step; a patch that fails names itself and git's report of the hunk.
 */
export async function applyPatches(tree: string, patches: string[], where: string): Promise<void> {
  for (const patch of patches) {
    const out = await $({ cwd: tree })`git apply --verbose ${patch}`.nothrow();
    if (out.exitCode !== 0) throw new RefusalError(`${patch} no longer applies to ${where}: ${describeApplyFailure(out.stderr)}`);
  }
}

/** git apply's report, in one line: where the hunk failed and what it looked for. */
export function describeApplyFailure(stderr: string): string {
  const lines = stderr.split('\n');
  const errors = lines.filter((l) => l.startsWith('error: ') && !l.includes('while searching for:')).map((l) => l.slice('error: '.length));
  const searching = lines.findIndex((l) => l.includes('while searching for:'));
  const expected = searching >= 0 ? lines.slice(searching + 1).find((l) => l.trim() && !l.startsWith('error:')) : undefined;
  const looked = expected ? ` (the hunk looks for "${expected.trim()}")` : '';
  return `${errors.join('; ') || stderr.trim()}${looked}`;
}

export async function patchDigest(patches: string[]): Promise<string> {
  const h = createHash('sha256');
  for (const p of patches) h.update(basename(p)).update('\0').update(await readFile(p));
  return h.digest('hex');
}
