/**
 * One run at a time: a lock file holding the command, host, PID, the PID's
 * start time (so that a recycled PID is not taken for the holder) and when the
 * run started. Used for one nightly per inventory, and for the images cache
 * (a nightly, a rollback or images:build by hand: one writer of the images
 * lock and archives at a time). A second run gets LockHeldError (exit 3); a
 * lock whose holder is gone on this host is taken over, and the taker says so.
 */
import { readFileSync } from 'node:fs';
import { link, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

export interface LockHolder {
  /** What holds it: nightly, images:rollback, images:build (absent in locks written before it was recorded). */
  command?: string;
  host: string;
  pid: number;
  /** Field 22 of /proc/PID/stat: with the PID, names one process for the whole boot. */
  pidStart: string;
  startedAt: string;
}

/** Another run holds the lock: exit 3. */
export class LockHeldError extends Error {
  override name = 'LockHeldError';
  readonly exitCode = 3;
  constructor(
    readonly file: string,
    readonly holder: LockHolder,
    requester = 'nightly',
  ) {
    const who = holder.command ?? 'nightly';
    const held = `${file}: PID ${holder.pid} on ${holder.host}, started ${holder.startedAt}`;
    super(who === requester ? `another ${who} holds ${held}; not starting a second one` : `${who === 'nightly' ? 'a nightly' : who} holds ${held}; ${requester} does not run beside it: run it again once that one has finished`);
  }
}

export interface HeldLock {
  file: string;
  holder: LockHolder;
  /** The stale holder this run took the lock over from, if any. */
  tookOverFrom: LockHolder | null;
  release(): Promise<void>;
}

/** The start time of a live process, or null when there is none with that PID. */
export function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may hold spaces and parentheses: count fields after its last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** Pure: is the recorded holder gone? Only a holder on this host can be judged; one elsewhere counts as alive. */
export function holderIsGone(holder: LockHolder, thisHost: string, startOf: (pid: number) => string | null): boolean {
  if (holder.host !== thisHost) return false;
  const start = startOf(holder.pid);
  return start === null || start !== holder.pidStart;
}

function parseHolder(text: string): LockHolder | null {
  try {
    const h = JSON.parse(text) as Partial<LockHolder>;
    return typeof h.host === 'string' && Number.isInteger(h.pid) && typeof h.startedAt === 'string' ? ({ pidStart: '', ...h } as LockHolder) : null;
  } catch {
    return null;
  }
}

export async function acquireLock(file: string, now = new Date(), command = 'nightly'): Promise<HeldLock> {
  await mkdir(dirname(file), { recursive: true });
  const me: LockHolder = { command, host: hostname(), pid: process.pid, pidStart: processStart(process.pid) ?? '', startedAt: now.toISOString() };
  // Written whole under a name of our own, then linked into place: link() fails if the lock exists,
  // and a lock file is never seen half-written.
  const mine = `${file}.${process.pid}.tmp`;
  await writeFile(mine, `${JSON.stringify(me)}\n`, { mode: 0o644 });
  try {
    return await takeLock(file, mine, me, command);
  } finally {
    await rm(mine, { force: true });
  }
}

async function takeLock(file: string, mine: string, me: LockHolder, command: string): Promise<HeldLock> {
  let tookOverFrom: LockHolder | null = null;
  for (let attempt = 0; attempt < 5; attempt++) {
    const created = await link(mine, file).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'EEXIST') return false;
        throw err;
      },
    );
    if (created) {
      return {
        file,
        holder: me,
        tookOverFrom,
        // Only our own lock is removed: a run that lost it (taken over by mistake) leaves the new holder's.
        release: async () => {
          const now = parseHolder(await readFile(file, 'utf8').catch(() => ''));
          if (now?.pid === me.pid && now.pidStart === me.pidStart && now.host === me.host) await rm(file, { force: true });
        },
      };
    }
    const text = await readFile(file, 'utf8').catch(() => null);
    if (text === null) continue; // released between our open and read: try again
    const holder = parseHolder(text);
    // A lock file that names no one (written by hand, or damaged) is stale too.
    if (holder && !holderIsGone(holder, me.host, processStart)) throw new LockHeldError(file, holder, command);
    // Of two runs taking over the same stale lock, one rename succeeds; the other retries and finds the winner's lock.
    const aside = `${file}.stale-${process.pid}`;
    if (!(await rename(file, aside).then(() => true, () => false))) continue;
    if ((await readFile(aside, 'utf8').catch(() => null)) !== text) {
      // Another run took the stale lock over between our read and our rename: what we moved is its live lock.
      await rename(aside, file);
      continue;
    }
    await rm(aside, { force: true });
    tookOverFrom = holder ?? { host: '?', pid: 0, pidStart: '', startedAt: '?' };
  }
  throw new Error(`${file}: could not take the lock after 5 attempts (other runs keep taking it)`);
}

/** What a run says when it took over a lock whose holder is gone. */
export function tookOverMessage(file: string, from: LockHolder): string {
  return `took over the stale lock of PID ${from.pid} on ${from.host} (started ${from.startedAt}; that process is gone): ${file}`;
}

/**
 * acquireLock for a command's entry: when another run holds the lock, its
 * message (with `note`) goes to stderr and the exit code to return comes back;
 * a lock taken over from a run that is gone is said on stdout.
 */
export async function acquireOrExit(file: string, now: Date, command: string, note = ''): Promise<HeldLock | number> {
  let held: HeldLock;
  try {
    held = await acquireLock(file, now, command);
  } catch (err) {
    if (!(err instanceof LockHeldError)) throw err;
    process.stderr.write(`armlab: ${err.message}${note}\n`);
    return err.exitCode;
  }
  if (held.tookOverFrom) process.stdout.write(`${command}: ${tookOverMessage(file, held.tookOverFrom)}\n`);
  return held;
}
