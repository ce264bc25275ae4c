/**
 * A cached artefact that is sometimes made again (the nightly finds that Debian or an
 * unpinned tarball moved) while another command or test file on the same cache still
 * reads the copy it was handed. Made again in place, its files would go from under that
 * reader. So each making goes to a folder of its own, and `current`, a symlink, is
 * swapped to it by rename: a reader keeps the folder it was given. The previous folder
 * is kept for readers still on it; older ones are removed once a new one is made, and
 * unfinished ones when the next making starts (a failed one is left until then, for its logs).
 * Callers hold the artefact's build lock (build-lock.ts) around these calls.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { RefusalError } from './errors.ts';

const CURRENT = 'current';
const COMPLETE = 'complete';

/**
 * The folder `current` names, if its making finished; else undefined. `legacy`: files that
 * mark a finished cache of the layout before generations, which is then adopted as the
 * current generation (moved, not made again: an offline machine keeps what it had).
 */
export async function currentGeneration(dir: string, legacy: string[] = []): Promise<string | undefined> {
  let name = await currentName(dir);
  if (!name && legacy.length && legacy.every((f) => existsSync(join(dir, f)))) name = await adoptLegacy(dir);
  return name && existsSync(join(dir, name, COMPLETE)) ? join(dir, name) : undefined;
}

/**
 * Makes a new generation with `make(folder)` and points `current` at it. `make` may answer
 * 'same' (what it made equals the current one): the new folder is dropped and the
 * current one kept, so readers are not moved for nothing. On failure `current` is unchanged.
 */
export async function makeGeneration(dir: string, make: (folder: string) => Promise<void | 'same'>): Promise<string> {
  await mkdir(dir, { recursive: true });
  const previous = await currentName(dir);
  await removeAllBut(dir, [previous], { finished: false });
  const folder = await newFolder(dir);
  if ((await make(folder)) === 'same' && previous && existsSync(join(dir, previous, COMPLETE))) {
    await rm(folder, { recursive: true, force: true });
    return join(dir, previous);
  }
  await finish(dir, folder);
  // Not thrown: the making succeeded, and the next one removes what is left (or says why it cannot).
  await removeAllBut(dir, [basename(folder), previous], { finished: true }).catch(() => undefined);
  return folder;
}

async function newFolder(dir: string): Promise<string> {
  const folder = await mkdtemp(join(dir, 'g-'));
  // mkdtemp makes it 0700; apt's sandbox user must reach the .debs' partial folder.
  await chmod(folder, 0o755);
  return folder;
}

async function finish(dir: string, folder: string): Promise<void> {
  await writeFile(join(folder, COMPLETE), `${new Date().toISOString()}\n`);
  const link = join(dir, `${CURRENT}.${process.pid}`);
  await rm(link, { force: true });
  await symlink(basename(folder), link);
  await rename(link, join(dir, CURRENT));
}

async function adoptLegacy(dir: string): Promise<string> {
  const entries = await readdir(dir);
  const folder = await newFolder(dir);
  for (const entry of entries) await rename(join(dir, entry), join(folder, entry));
  await finish(dir, folder);
  return basename(folder);
}

async function currentName(dir: string): Promise<string | undefined> {
  return readlink(join(dir, CURRENT)).catch(() => undefined);
}

/** `finished`: also folders whose making finished (older generations), not only unfinished ones and stray files. */
async function removeAllBut(dir: string, keep: (string | undefined)[], which: { finished: boolean }): Promise<void> {
  const mounts = await mountPoints();
  for (const entry of await readdir(dir)) {
    if (entry === CURRENT || keep.includes(entry)) continue;
    if (!which.finished && existsSync(join(dir, entry, COMPLETE))) continue;
    const path = join(dir, entry);
    // A killed debootstrap can leave /proc or /sys mounted in its target; rm would walk into them.
    const inside = mounts.filter((m) => m === path || m.startsWith(`${path}/`));
    if (inside.length) throw new RefusalError(`cannot remove the unfinished cache folder ${path}: ${inside.join(', ')} ${inside.length > 1 ? 'are' : 'is'} mounted in it (left by a killed debootstrap?); unmount ${inside.length > 1 ? 'them' : 'it'} (umount -R ${inside.join(' ')}), then run again`);
    await rm(path, { recursive: true, force: true });
  }
}

/** Mount points of this process's mount namespace (mountinfo's fifth field, octal escapes decoded). */
async function mountPoints(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text.split('\n').filter(Boolean).map((line) => line.split(' ')[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}
