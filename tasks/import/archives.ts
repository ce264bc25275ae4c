/**
 * Before any byte of an archive goes to a node, it is checked once on this
 * machine — present, the sha256 the lock recorded (a truncated or corrupt
 * file is caught here), and the platform its config declares.
 */
import { existsSync } from 'node:fs';
import { sha256OfFile } from '../core/digest.ts';
import { inspectArchive } from '../images/archive.ts';
import type { LockEntry } from '../images/lock.ts';

/** archiveProblem memoised per image: each archive is checked once per run, by whichever node needs it first. */
export function archiveChecker(): (entry: LockEntry) => Promise<string | null> {
  const checks = new Map<string, Promise<string | null>>();
  return (e) => {
    if (!checks.has(e.name)) checks.set(e.name, archiveProblem(e).catch((err: Error) => `${e.archive} cannot be read: ${err.message}`));
    return checks.get(e.name)!;
  };
}

/** null when the archive is fit to send; otherwise what is wrong and how to fix it. */
export async function archiveProblem(entry: LockEntry): Promise<string | null> {
  if (!existsSync(entry.archive)) return `${entry.archive} is missing; run images:build`;
  // Both read the file; side by side they share the page cache and both cores.
  const [sha, facts] = await Promise.all([sha256OfFile(entry.archive), inspectArchive(entry.archive).catch((err: Error) => err)]);
  if (sha !== entry.archiveSha256) {
    return `${entry.archive} is corrupt or truncated: its sha256 is ${sha.slice(0, 12)}…, the lock recorded ${entry.archiveSha256.slice(0, 12)}…; rebuild it with images:build`;
  }
  if (facts instanceof Error) return `${entry.archive} is not a docker-archive: ${facts.message}`;
  const platform = [facts.config.os ?? 'linux', facts.config.architecture, facts.config.variant].filter(Boolean).join('/');
  if (platform !== entry.platform) return `${entry.archive} declares ${platform}, the lock says ${entry.platform}; rebuild it with images:build`;
  return null;
}
