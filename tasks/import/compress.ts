/**
 * Optional compression on the wire: each archive is compressed once on this
 * machine (kept beside it, keyed by the archive's sha256) and decompressed in
 * the node's pipe. `auto` uses zstd where both ends have it.
 */
import { existsSync } from 'node:fs';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { commandExists, run } from '../core/local.ts';
import type { LockEntry } from '../images/lock.ts';
import type { Compression } from './remote.ts';

export type CompressChoice = 'auto' | Compression;
export const COMPRESS_CHOICES: readonly CompressChoice[] = ['auto', 'zstd', 'gzip', 'none'];

/** Pure: what to use with a node, or why the asked-for one cannot be. */
export function chooseCompression(choice: CompressChoice, nodeHas: string[], localHas: string[]): { use: Compression } | { problem: string } {
  if (choice === 'none') return { use: 'none' };
  if (choice === 'auto') return { use: nodeHas.includes('zstd') && localHas.includes('zstd') ? 'zstd' : 'none' };
  if (!localHas.includes(choice)) return { problem: `--compress ${choice}: this machine has no ${choice} (apt-get install ${choice})` };
  if (!nodeHas.includes(choice)) return { problem: `--compress ${choice}: the node has no ${choice} (apt-get install ${choice}), or use --compress auto` };
  return { use: choice };
}

export async function localCompressors(): Promise<string[]> {
  const found: string[] = [];
  for (const tool of ['zstd', 'gzip']) if (await commandExists(tool)) found.push(tool);
  return found;
}

const pending = new Map<string, Promise<{ file: string; size: number }>>();

async function make(entry: LockEntry, kind: Exclude<Compression, 'none'>): Promise<{ file: string; size: number }> {
  const file = `${entry.archive}.${kind === 'zstd' ? 'zst' : 'gz'}`;
  const stamp = `${file}.source-sha256`;
  const fresh = existsSync(file) && (await readFile(stamp, 'utf8').catch(() => '')).trim() === entry.archiveSha256;
  if (!fresh) {
    await rm(stamp, { force: true });
    // Fast levels: the wire, not the compressor, should stay the bottleneck.
    if (kind === 'zstd') await run`zstd -q -f -1 -T0 ${entry.archive} -o ${`${file}.part`}`;
    else await run`sh -c ${'gzip -1 -c "$1" > "$2"'} sh ${entry.archive} ${`${file}.part`}`;
    await rename(`${file}.part`, file);
    await writeFile(stamp, `${entry.archiveSha256}\n`);
  }
  return { file, size: (await stat(file)).size };
}

/** The file to stream for `entry` with `kind`; compressed at most once per run, shared by every node. */
export function wireFile(entry: LockEntry, kind: Compression): Promise<{ file: string; size: number }> {
  if (kind === 'none') return Promise.resolve({ file: entry.archive, size: entry.size });
  const key = `${entry.archive}:${kind}`;
  let p = pending.get(key);
  if (!p) {
    p = make(entry, kind);
    pending.set(key, p);
  }
  return p;
}
