/**
 * A file replaced whole: written under a temporary name of this process's own
 * in the same folder, fsynced, then renamed over the old one. A reader sees
 * the old file or the new one, never half of one, and a Pi that loses power
 * keeps one of the two, never an empty file.
 */
import { mkdir, open, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export async function atomicWrite(file: string, text: string, mode = 0o644): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  // A dot name that keeps no suffix: node_exporter reads only *.prom, and a reader of *.json skips it too.
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  const handle = await open(tmp, 'w', mode);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
}
