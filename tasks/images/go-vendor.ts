/**
 * Go modules are fetched on this machine's side, like every other input: the
 * toolchain recipe's own rootfs (the Go that will compile) runs `go mod
 * vendor` in the source tree, chrooted in a private mount namespace. The
 * build then compiles with -mod=vendor and needs no network.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import semver from 'semver';
import { $ } from '../core/local.ts';
import { RefusalError } from '../core/errors.ts';
import { sourcesCacheDir } from './lock.ts';

const SCRIPT = `set -eu
rootfs=$1 tree=$2 modcache=$3
mount --bind "$tree" "$rootfs/armlab-src"
mount --bind "$modcache" "$rootfs/armlab-gomod"
mount --bind /etc/resolv.conf "$rootfs/etc/resolv.conf"
mount -t proc proc "$rootfs/proc"
exec chroot "$rootfs" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/tmp GOTOOLCHAIN=local GOFLAGS=-mod=mod \\
  GOMODCACHE=/armlab-gomod GOCACHE=/tmp/armlab-gocache sh -c 'cd /armlab-src && go mod vendor'`;

/** The `go` directive of a go.mod (the least Go that builds the module), null when absent. */
export function goDirective(goMod: string): string | null {
  return /^go\s+(\d+\.\d+(?:\.\d+)?)\s*(?:\/\/.*)?$/m.exec(goMod)?.[1] ?? null;
}

/** `go1.27.0` / `go1.22` (a toolchain's VERSION file) → `1.27.0`, null when unreadable. */
export function toolchainGoVersion(versionFile: string): string | null {
  return /^go(\d+\.\d+(?:\.\d+)?)/.exec(versionFile.trim())?.[1] ?? null;
}

/** Pure: Go versions compared as semver (1.9 < 1.26; a missing patch is 0). */
export function goVersionAtLeast(have: string, want: string): boolean {
  return semver.gte(semver.coerce(have)!, semver.coerce(want)!);
}

/** The toolchain must provide at least the Go the module asks for, or the vendored build fails later with GOTOOLCHAIN=local. */
async function checkGoVersion(tree: string, toolchainRootfs: string, toolchain: string): Promise<void> {
  const want = goDirective(await readFile(join(tree, 'go.mod'), 'utf8'));
  if (!want) return;
  // Debian's /usr/lib/go links to go-1.NN; resolved inside the rootfs, never on this machine.
  const link = await readlink(join(toolchainRootfs, 'usr/lib/go')).catch(() => 'go');
  const versionFile = link.startsWith('/') ? join(toolchainRootfs, link, 'VERSION') : join(toolchainRootfs, 'usr/lib', link, 'VERSION');
  const have = existsSync(versionFile) ? toolchainGoVersion(await readFile(versionFile, 'utf8')) : null;
  if (!have) throw new RefusalError(`vendorGoModulesWith: cannot read the Go version of recipe "${toolchain}" (${versionFile})`);
  if (!goVersionAtLeast(have, want)) {
    throw new RefusalError(`${join(tree, 'go.mod')} asks for Go ${want}, but recipe "${toolchain}" provides Go ${have}: give that recipe a newer Go (images/${toolchain}/image.yaml), or pin an older upstream commit`);
  }
}

export async function vendorGoModules(tree: string, toolchainRootfs: string, toolchain: string, log: (m: string) => void): Promise<void> {
  if (!existsSync(join(tree, 'go.mod'))) throw new RefusalError(`vendorGoModulesWith: ${tree} has no go.mod`);
  if (!existsSync(join(toolchainRootfs, 'usr/bin/go'))) throw new RefusalError(`vendorGoModulesWith: recipe "${toolchain}" has no /usr/bin/go (add golang-go to its debootstrap packages)`);
  await checkGoVersion(tree, toolchainRootfs, toolchain);
  const modcache = join(sourcesCacheDir(), 'go-modules');
  for (const dir of [join(toolchainRootfs, 'armlab-src'), join(toolchainRootfs, 'armlab-gomod'), modcache]) await mkdir(dir, { recursive: true });
  if (!existsSync(join(toolchainRootfs, 'etc/resolv.conf'))) await writeFile(join(toolchainRootfs, 'etc/resolv.conf'), '');
  log(`go mod vendor in ${tree} with recipe "${toolchain}"'s Go`);
  const out = await $`unshare --mount --propagation private sh -c ${SCRIPT} armlab-vendor ${toolchainRootfs} ${tree} ${modcache}`.nothrow();
  // A module without dependencies has nothing to vendor; Go says so and that is fine.
  if (out.exitCode !== 0 && !/no dependencies to vendor/.test(out.stderr)) {
    throw new RefusalError(`go mod vendor failed in ${tree}: ${out.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }
}
