/**
 * images:import on one node: probe, plan, then stream each missing image over
 * this node's own SSH channel into `k3s ctr images import -` (no temp file,
 * no writer shared with other nodes), verify it, pin it, purge wrong-platform
 * copies. A failed import leaves no ref behind that was not there before.
 */
import { createReadStream } from 'node:fs';
import { Transform } from 'node:stream';
import { reasonOf, RemoteCommandError } from '../core/errors.ts';
import type { NodeTask } from '../core/runner.ts';
import type { Connection } from '../core/ssh.ts';
import type { LockEntry } from '../images/lock.ts';
import { containerdRef, planNode, platformOfDebianArch, type Purge } from './plan.ts';
import { chooseCompression, wireFile, type CompressChoice } from './compress.ts';
import { IMPORT_PROBE, importCommand, parseProbe, pinCommand, removeCommand, type Compression, type ProbeResult } from './remote.ts';

export type ImageResult = 'imported' | 'skipped' | 'pinned' | 'refused' | 'failed' | 'would import' | 'would pin';

export interface ImageOutcome {
  image: string;
  result: ImageResult;
  /** Image bytes sent over the wire. */
  bytes: number;
  seconds: number;
  reason: string;
}

export interface NodeImport {
  images: ImageOutcome[];
  purged: Purge[];
}

export interface ImportOptions {
  prune: boolean;
  compress: CompressChoice;
  /** Compressors on this machine. */
  localCompressors: string[];
  /** An import may take long on a slow link; the node's own command timeout is for short commands. */
  importTimeoutMs: number;
  /** Whether an archive is fit to send (sha256, platform): null, or the problem. Shared by all nodes. */
  checkArchive: (entry: LockEntry) => Promise<string | null>;
}

const IMPORT_MIN_TIMEOUT_MS = 30 * 60_000;

async function probe(conn: Connection): Promise<ProbeResult> {
  return parseProbe((await conn.run(IMPORT_PROBE)).stdout);
}

function counting(onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      onBytes(chunk.length);
      done(null, chunk);
    },
  });
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);

async function streamImage(conn: Connection, entry: LockEntry, platform: string, compression: Compression, opts: ImportOptions, progress: (m: string) => void): Promise<{ bytes: number; seconds: number }> {
  const wire = await wireFile(entry, compression);
  const started = Date.now();
  let bytes = 0;
  let shown = 0;
  const source = createReadStream(wire.file);
  const counter = counting((n) => {
    bytes += n;
    if (Date.now() - shown > 500) {
      shown = Date.now();
      const seconds = (Date.now() - started) / 1000;
      progress(`${entry.name}: ${mb(bytes)}/${mb(wire.size)} MB${compression === 'none' ? '' : ` ${compression}`}, ${(bytes / 1e6 / Math.max(seconds, 0.001)).toFixed(1)} MB/s`);
    }
  });
  source.on('error', (e) => counter.destroy(e));
  await conn.run(importCommand(platform, compression, containerdRef(entry.image), entry.configDigest), { stdin: source.pipe(counter), timeoutMs: opts.importTimeoutMs });
  return { bytes, seconds: (Date.now() - started) / 1000 };
}

/** After a failed import: remove the ref if it is new or changed, so no half-made image is left to run. */
async function undoPartial(conn: Connection, ref: string, before: string | undefined): Promise<string> {
  try {
    const now = (await probe(conn)).images.find((i) => i.ref === ref);
    if (now && now.digest !== before) {
      await conn.run(removeCommand([ref]));
      return '; the partial ref was removed';
    }
    return before ? '; the image the node held before is untouched' : '; no ref was left behind';
  } catch {
    return '; the node could not be checked (it stays as the import left it; the next run re-checks it)';
  }
}

export function importTask(entries: LockEntry[], opts: ImportOptions): NodeTask<NodeImport> {
  return {
    id: 'images:import',
    async run(node, conn, ctx, progress) {
      const timeouts = { ...opts, importTimeoutMs: Math.max(opts.importTimeoutMs, node.commandTimeoutMs, IMPORT_MIN_TIMEOUT_MS) };
      const found = await probe(conn);
      if (!found.k3s) return { status: 'failed', reason: 'k3s is not installed (run k3s:install first)' };
      const platform = platformOfDebianArch(found.arch);
      if (!platform) return { status: 'failed', reason: `userland "${found.arch}" has no container platform armlab knows` };
      const plan = planNode(entries, found.images, platform, opts.prune);
      // Only a node that is sent something needs the decompressor.
      const chosen = chooseCompression(opts.compress, found.decompressors, opts.localCompressors);
      if ('problem' in chosen && !ctx.check && plan.actions.some((a) => a.kind === 'import')) return { status: 'failed', reason: chosen.problem };
      const compression = 'use' in chosen ? chosen.use : 'none';
      // Start checking every archive this node needs now, so later images are checked while earlier ones stream.
      if (!ctx.check) for (const a of plan.actions) if (a.kind === 'import') void opts.checkArchive(a.entry);
      const images: ImageOutcome[] = [];
      const done = (entry: LockEntry, result: ImageResult, reason: string, bytes = 0, seconds = 0) => images.push({ image: entry.image, result, bytes, seconds, reason });
      let lost: unknown = null;

      for (const action of plan.actions) {
        const { entry } = action;
        const ref = containerdRef(entry.image);
        if (lost) {
          done(entry, 'failed', `not tried: ${reasonOf(lost)}`);
          continue;
        }
        if (action.kind === 'skip') done(entry, 'skipped', action.reason);
        else if (action.kind === 'refuse') done(entry, 'refused', action.reason);
        else if (ctx.check) done(entry, action.kind === 'pin' ? 'would pin' : 'would import', action.reason);
        else if (action.kind === 'pin') {
          await conn.run(pinCommand(ref));
          done(entry, 'pinned', action.reason);
        } else {
          const unfit = await opts.checkArchive(entry);
          if (unfit) {
            done(entry, 'refused', `${unfit}; nothing sent`);
            continue;
          }
          const before = found.images.find((i) => i.ref === ref)?.digest;
          try {
            // Import, verify (ref, config digest, platform) and pin: one round trip.
            const sent = await streamImage(conn, entry, platform, compression, timeouts, progress);
            const wire = compression === 'none' ? '' : `, ${compression} on the wire`;
            done(entry, 'imported', `${action.reason}; verified ${entry.configDigest.slice(0, 19)} ${platform}, pinned${wire}`, sent.bytes, sent.seconds);
          } catch (err) {
            if (/connection lost|not connected|timed out|ECONNRESET|killed by/.test(reasonOf(err))) lost = err;
            // Exit 3 or 4: the import ran but the ref is not what was built (see importCommand).
            const mismatch = err instanceof RemoteCommandError && (err.exitCode === 3 || err.exitCode === 4) ? `not verified: ${err.stderrTail.trim()}` : reasonOf(err);
            done(entry, 'failed', `${mismatch}${lost ? '' : await undoPartial(conn, ref, before)}`);
          }
        }
      }

      const purged: Purge[] = [];
      if (!lost && plan.purges.length) {
        if (!ctx.check) await conn.run(removeCommand(plan.purges.map((p) => p.ref)));
        purged.push(...plan.purges);
      }
      const count = (r: ImageResult) => images.filter((i) => i.result === r).length;
      const failed = count('failed') + count('refused');
      const changed = count('imported') + count('pinned') + (ctx.check ? 0 : purged.length);
      const parts = [
        `imported ${count('imported')}`,
        `skipped ${count('skipped')}`,
        ...(count('pinned') ? [`pinned ${count('pinned')}`] : []),
        `${ctx.check ? 'would purge' : 'purged'} ${purged.length}`,
        `failed ${failed}`,
        ...(ctx.check && (count('would import') || count('would pin')) ? [`would import ${count('would import')}, would pin ${count('would pin')}`] : []),
      ];
      const wouldChange = ctx.check && count('would import') + count('would pin') + purged.length > 0;
      const status = failed ? 'failed' : changed ? 'changed' : wouldChange ? 'would change' : 'unchanged';
      return { status, reason: parts.join(', '), data: { images, purged } };
    },
  };
}
