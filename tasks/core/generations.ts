/**
 * A cached artefact that is sometimes made again (the nightly finds that Debian or an
 * unpinned tarball moved) while another command or test file on the same cache still
 * reads the copy it was handed. Made again in place, its files would go from under that
 * reader. So each making goes to a folder of its own, and `current`, a symlink, is
 * swapped to it by rename: a reader keeps the folder it was given. The previous folder
 * is kept for readers still on it; older ones and unfinished ones are removed.
 * Callers hold the artefact's build lock (build-lock.ts) around these calls.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

const CURRENT = 'current';
const COMPLETE = 'complete';

/** The folder `current` names, if its making finished; else undefined. */
export async function currentGeneration(dir: string): Promise<string | undefined> {
  const name = await currentName(dir);
  return name && existsSync(join(dir, name, COMPLETE)) ? join(dir, name) : undefined;
}

/** Makes a new generation with `make(folder)`, then points `current` at it. On failure `current` is unchanged. */
export async function makeGeneration(dir: string, make: (folder: string) => Promise<void>): Promise<string> {
  await mkdir(dir, { recursive: true });
  const previous = await currentName(dir);
  // Unfinished folders of killed makings (and files of the layout before generations) go first.
  await removeAllBut(dir, [previous]);
  const folder = await mkdtemp(join(dir, 'g-'));
  const name = basename(folder);
  try {
    await make(folder);
  } catch (err) {
    await rm(folder, { recursive: true, force: true });
    throw err;
  }
  await writeFile(join(folder, COMPLETE), `${new Date().toISOString()}\n`);
  const link = join(dir, `${CURRENT}.${process.pid}`);
  await rm(link, { force: true });
  await symlink(name, link);
  await rename(link, join(dir, CURRENT));
  await removeAllBut(dir, [name, previous]);
  return folder;
}

async function currentName(dir: string): Promise<string | undefined> {
  return readlink(join(dir, CURRENT)).catch(() => undefined);
}

async function removeAllBut(dir: string, keep: (string | undefined)[]): Promise<void> {
  for (const entry of await readdir(dir)) {
    if (entry !== CURRENT && !keep.includes(entry)) await rm(join(dir, entry), { recursive: true, force: true });
  }
}
