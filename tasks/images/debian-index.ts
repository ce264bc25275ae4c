/**
 * What Debian's index offers now, for the nightly: the candidate version of
 * each package, from a fresh `apt-get update` in a private apt state (the
 * machine's own apt is untouched: apt-private.ts), for the suite and
 * architecture an image's packages came from.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { $ } from '../core/local.ts';
import { withBuildLock } from '../core/build-lock.ts';
import { RefusalError } from '../core/errors.ts';
import { privateAptState } from './apt-private.ts';
import { debianMirror } from '../lab/golden.ts';
import { sourcesCacheDir } from './lock.ts';

/** Pure: Package/Version pairs of `apt-cache show` stanzas; the first stanza of a package wins (the candidate). */
export function parseAptShow(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const stanza of text.split(/\n\n+/)) {
    const pkg = /^Package: (\S+)$/m.exec(stanza)?.[1];
    const version = /^Version: (\S+)$/m.exec(stanza)?.[1];
    if (pkg && version && !out.has(pkg)) out.set(pkg, version);
  }
  return out;
}

const updated = new Map<string, Promise<{ opts: string[]; lockFile: string }>>();

/** apt options for a private state of `suite`/`arch`, its lists refreshed once per run, and the lock its readers take. */
async function freshIndex(suite: string, arch: string): Promise<{ opts: string[]; lockFile: string }> {
  const mirror = await debianMirror();
  const key = `${suite}/${arch}/${mirror}`;
  let pending = updated.get(key);
  if (!pending) {
    pending = (async () => {
      const dir = join(sourcesCacheDir(), `index-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`);
      // Another command or test file may use the same state, and the private state takes no apt locks
      // (Debug::NoLocking): two updates would write over each other's partial downloads, and an
      // apt-cache could read lists half replaced. So one at a time, readers too.
      const lockFile = `${dir}.lock`;
      const { opts, out } = await withBuildLock(lockFile, async () => {
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, 'status'), '');
        const opts = await privateAptState(dir, { arch, mirror, suite, status: join(dir, 'status') });
        return { opts, out: await $`apt-get ${opts} -qq update`.nothrow() };
      });
      if (out.exitCode !== 0) throw new RefusalError(`apt-get update for Debian ${suite} ${arch} from ${mirror} failed: ${out.stderr.trim().split('\n').pop()}; set ARMLAB_DEBIAN_MIRROR to a reachable Debian mirror`);
      return { opts, lockFile };
    })();
    updated.set(key, pending);
  }
  return pending;
}

/** name=version for each of `packages` (names or name=version) as the index offers it now; absent ones as name=(gone). */
export async function indexVersions(suite: string, arch: string, packages: string[]): Promise<string[]> {
  const names = packages.map((p) => p.split('=')[0]!);
  if (!names.length) return [];
  const { opts, lockFile } = await freshIndex(suite, arch);
  // apt-cache exits non-zero when one name is unknown; what it found is still on stdout.
  const out = await withBuildLock(lockFile, () => $`apt-cache ${opts} show --no-all-versions ${names}`.nothrow());
  const otherErrors = out.stderr.split('\n').filter((l) => /^E: /.test(l) && !/No packages found|Unable to locate/.test(l));
  if (otherErrors.length) throw new RefusalError(`apt-cache could not read the Debian ${suite} ${arch} index: ${otherErrors.join('; ')}`);
  const versions = parseAptShow(out.stdout);
  return names.map((n) => `${n}=${versions.get(n) ?? '(gone)'}`).sort();
}
