/**
 * A k3s release folder that serves the k3s STAND-IN (tests/k3s-stand-in/): not
 * k3s, but laid out as k3s's releases are, so that armlab takes it through
 * k3s.mirror like any mirror: install.sh at the top, and per version the
 * binaries k3s-armhf, k3s-arm64 and k3s (the stand-in script with its version
 * baked in) with their sha256sum-<arch>.txt. The lab's demo serves it as a
 * file: mirror; the tests serve it over HTTP (tests/helpers/k3s-mirror.ts).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const STAND_IN_DIR = join(import.meta.dirname, '..', '..', 'tests', 'k3s-stand-in');

const BUILDS = [
  { file: 'k3s-armhf', arch: 'arm', sums: 'sha256sum-arm.txt' },
  { file: 'k3s-arm64', arch: 'arm64', sums: 'sha256sum-arm64.txt' },
  { file: 'k3s', arch: 'amd64', sums: 'sha256sum-amd64.txt' },
];

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** The stand-in as served for one version and arch: one script, as k3s is one binary, its parts inlined at their INCLUDE lines. */
export function standInScript(tag: string, arch: string): string {
  return readFileSync(join(STAND_IN_DIR, 'k3s'), 'utf8')
    .replace(/^# @INCLUDE ([a-z-]+\.sh)@$/gm, (_, part: string) => readFileSync(join(STAND_IN_DIR, part), 'utf8'))
    .replace("VERSION='@VERSION@'", `VERSION='${tag}'`)
    .replace("ARCH='@ARCH@'", `ARCH='${arch}'`);
}

/** One version's binaries and checksum files under dir/<tag>/. */
export async function writeStandInVersion(dir: string, tag: string): Promise<void> {
  const vdir = join(dir, tag);
  await mkdir(vdir, { recursive: true });
  for (const b of BUILDS) {
    const body = standInScript(tag, b.arch);
    await writeFile(join(vdir, b.file), body, { mode: 0o755 });
    // Like upstream: the listing also names other artefacts of the release.
    await writeFile(join(vdir, b.sums), `${sha(body)}  ${b.file}\n${sha(`airgap ${b.arch}`)}  k3s-airgap-images-${b.arch}.tar\n`);
  }
}

/** install.sh and the given versions; channels as files holding their tag (how a folder mirror answers a channel). */
export async function writeStandInRelease(dir: string, versions: string[], channels: Record<string, string> = {}): Promise<void> {
  await mkdir(join(dir, 'channels'), { recursive: true });
  await writeFile(join(dir, 'install.sh'), readFileSync(join(STAND_IN_DIR, 'install.sh')));
  for (const v of versions) await writeStandInVersion(dir, v);
  for (const [name, tag] of Object.entries(channels)) await writeFile(join(dir, 'channels', name), `${tag}\n`);
}
