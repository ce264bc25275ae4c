/**
 * resolveGit against real git repositories on this machine: what a semver range
 * resolves to after upstream adds, withdraws or moves a tag (armlab keeps a
 * mirror clone in the images cache and fetches into it on every run).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { run } from '../../tasks/core/local.ts';
import { resolveGit } from '../../tasks/images/git-source.ts';

let scratch: string;
let upstream: string;
const saved = process.env.ARMLAB_IMAGES_CACHE;
const git = (...args: string[]) => run`git -C ${upstream} -c user.name=upstream -c user.email=upstream@example.invalid ${args}`;
async function release(tag: string, force = false): Promise<string> {
  await git('commit', '--quiet', '--allow-empty', '-m', `release ${tag}`);
  await git('tag', ...(force ? ['-f'] : []), tag);
  return (await git('rev-parse', 'HEAD')).trim();
}

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'armlab-unit-git-'));
  process.env.ARMLAB_IMAGES_CACHE = join(scratch, 'cache');
  upstream = join(scratch, 'upstream');
  await run`git init --quiet -b main ${upstream}`;
});
after(async () => {
  if (saved === undefined) delete process.env.ARMLAB_IMAGES_CACHE;
  else process.env.ARMLAB_IMAGES_CACHE = saved;
  await rm(scratch, { recursive: true, force: true });
});

test('a range follows upstream tags as they are added, withdrawn and moved', async () => {
  const spec = { url: upstream, range: '^0.1.0' };
  const first = await release('v0.1.0');
  assert.deepEqual(await resolveGit(spec), { commit: first, ref: 'v0.1.0', identity: `git:${upstream}@${first}` });
  const second = await release('v0.1.1');
  assert.equal((await resolveGit(spec)).commit, second, 'a new tag in the range is picked');
  await git('tag', '-d', 'v0.1.1');
  assert.deepEqual(await resolveGit(spec), { commit: first, ref: 'v0.1.0', identity: `git:${upstream}@${first}` }, 'a withdrawn tag is no longer picked');
  const moved = await release('v0.1.0', true);
  assert.equal((await resolveGit(spec)).commit, moved, 'a tag moved upstream is followed, not refused');
});
