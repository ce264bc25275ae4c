/**
 * images:import [--images a,b] [--prune] [--parallel N]: every image in the
 * lock file that is built for the nodes, onto every selected node.
 */
import { parseCommon } from '../core/args.ts';
import { RefusalError, UsageError } from '../core/errors.ts';
import { runNodeCommand } from '../core/node-command.ts';
import { renderTable } from '../core/table.ts';
import { lockPath, readLock, type LockEntry } from '../images/lock.ts';
import { suggestion } from '../inventory/rules.ts';
import { archiveChecker } from './archives.ts';
import { COMPRESS_CHOICES, localCompressors, type CompressChoice } from './compress.ts';
import { importTask, type NodeImport } from './import-node.ts';

const EXTRA = {
  images: { type: 'string' },
  prune: { type: 'boolean', default: false },
  compress: { type: 'string', default: 'none' },
} as const;

export function selectEntries(all: LockEntry[], names: string[] | null): LockEntry[] {
  const forNodes = all.filter((e) => (e.target ?? 'nodes') === 'nodes');
  if (!names) return forNodes;
  return names.map((name) => {
    const found = forNodes.find((e) => e.name === name);
    if (!found) {
      const known = forNodes.map((e) => e.name);
      throw new UsageError(`--images: "${name}" is not an image for the nodes in ${lockPath()}${suggestion(name, known)} (built: ${known.join(', ') || 'none'})`);
    }
    return found;
  });
}

const rate = (bytes: number, seconds: number) => (bytes && seconds ? (bytes / 1e6 / seconds).toFixed(1) : '-');

export function renderImportTable(data: Map<string, NodeImport>): string {
  const rows: string[][] = [];
  for (const [node, d] of data) {
    for (const i of d.images) rows.push([node, i.image, i.result, i.bytes ? `${(i.bytes / 1e6).toFixed(1)} MB` : '-', rate(i.bytes, i.seconds), i.reason]);
    for (const p of d.purged) rows.push([node, p.ref, 'purged', '-', '-', p.reason]);
  }
  return renderTable(['NODE', 'IMAGE', 'RESULT', 'SENT', 'MB/s', 'REASON'], rows);
}

export async function imagesImportCommand(argv: string[]): Promise<number> {
  const { common, values } = parseCommon(argv, EXTRA);
  const compress = String(values.compress) as CompressChoice;
  if (!COMPRESS_CHOICES.includes(compress)) throw new UsageError(`--compress: got "${compress}", expected one of ${COMPRESS_CHOICES.join(', ')}`);
  const lock = await readLock();
  const names = typeof values.images === 'string' ? values.images.split(',').map((s) => s.trim()).filter(Boolean) : null;
  const entries = selectEntries(Object.values(lock.images), names);
  if (!entries.length) throw new RefusalError(`${lockPath()} has no images for the nodes; run images:build first`);
  // Each archive is checked once, when the first node needs it (a run with nothing to send reads none).
  const checkArchive = archiveChecker();
  const opts = { prune: values.prune === true, compress, localCompressors: compress === 'none' ? [] : await localCompressors(), importTimeoutMs: 0, checkArchive };
  return runNodeCommand(importTask(entries, opts), common, (_nodes, r) => renderImportTable(r.data));
}
