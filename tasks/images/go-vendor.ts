/**
 * Go modules are fetched on this machine's side, like every other input: the
 * toolchain recipe's own rootfs (the Go that will compile) runs `go mod
 * vendor` in the source tree, chrooted in a private mount namespace. The
 * build then compiles with -mod=vendor and needs no network.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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

export async function vendorGoModules(tree: string, toolchainRootfs: string, toolchain: string, log: (m: string) => void): Promise<void> {
  if (!existsSync(join(tree, 'go.mod'))) throw new RefusalError(`vendorGoModulesWith: ${tree} has no go.mod`);
  if (!existsSync(join(toolchainRootfs, 'usr/bin/go'))) throw new RefusalError(`vendorGoModulesWith: recipe "${toolchain}" has no /usr/bin/go (add golang-go to its debootstrap packages)`);
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
