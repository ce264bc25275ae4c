/**
 * The shipped recipes built from local fixtures through source mirrors: the
 * lab's own (tasks/lab/demo-sources.ts, shared with `lab:up --demo`), plus the
 * same mirrors as --source-mirror flags.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { run } from '../../tasks/core/local.ts';

export { fixtureRecipes, recipeWithSource, type FixtureRecipes } from '../../tasks/lab/demo-sources.ts';

/** The same mirrors as --source-mirror flags. */
export const mirrorFlags = (mirrors: Record<string, string>) => Object.entries(mirrors).flatMap(([prefix, to]) => ['--source-mirror', `${prefix}=${to}`]);

/** Git in a fixture upstream, as its maintainer. */
export const upstreamGit = (repo: string, ...args: string[]) => run`git -C ${repo} -c user.name=upstream -c user.email=upstream@example.invalid ${args}`;

/** A new upstream commit, tagged: `changes` maps files under `under` to their edits (each must change its file). */
export async function releaseUpstream(repo: string, tag: string, changes: Record<string, (text: string) => string>, under = ''): Promise<void> {
  for (const [path, change] of Object.entries(changes)) {
    const file = join(repo, under, path);
    const text = await readFile(file, 'utf8');
    const changed = change(text);
    assert.notEqual(changed, text, `${tag} changes ${path}`);
    await writeFile(file, changed);
  }
  await upstreamGit(repo, 'commit', '--quiet', '-am', `release ${tag}`);
  await upstreamGit(repo, 'tag', tag);
}
