/**
 * The golden rootfs: Debian bookworm (armhf, or amd64 for transfer benchmarks)
 * with systemd, sshd, sudo and a `pi` user, built once with debootstrap and cached in a
 * directory keyed by everything that goes into it. Hosts mount it read-only
 * as the lower layer of their overlay root.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { withBuildLock } from '../core/build-lock.ts';
import { run } from '../core/local.ts';
import { CONTAINERD_CONFIG, LAB_UNITS } from './identity.ts';
import type { Userland } from './plan.ts';

const SUITE = 'bookworm';
// systemd because a Pi boots it (and k3s's install.sh insists on an init system);
// busybox gives the k3s stand-in its small HTTP server. Not ca-certificates, which Pi OS
// has: nothing armlab does on a node reads the system's CA store (k3s's artefacts are
// fetched on the control machine and uploaded), and its postinst and trigger, one
// openssl and sed per certificate under emulation, were over a minute of a cold lab:up.
const PACKAGES = ['systemd', 'systemd-sysv', 'dbus', 'openssh-server', 'sudo', 'iproute2', 'procps', 'kmod', 'iptables', 'busybox'];
/** Bump when the setup below changes, so caches rebuild. */
const RECIPE_VERSION = 2;

/** Pi OS bookworm's cmdline.txt, before k3s:prep adds the cgroup flags. */
export const PI_CMDLINE = 'console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait quiet';

const SSHD_CONFIG = `# armlab lab host: key-only logins, no DNS lookups (no resolver in the lab)
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
HostKey /etc/ssh/ssh_host_ed25519_key
MaxStartups 64:30:128
`;

export function cacheRoot(): string {
  return process.env.ARMLAB_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'armlab');
}

/** The Debian mirror this machine's apt uses (debootstrap fetches from the same place). */
export async function debianMirror(): Promise<string> {
  if (process.env.ARMLAB_DEBIAN_MIRROR) return process.env.ARMLAB_DEBIAN_MIRROR;
  for (const file of ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list']) {
    const text = await readFile(file, 'utf8').catch(() => '');
    const deb822 = /^URIs:\s*(\S+)/m.exec(text);
    if (deb822?.[1] && !deb822[1].includes('security')) return deb822[1];
    const classic = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/m.exec(text);
    if (classic?.[1]) return classic[1];
  }
  return 'http://deb.debian.org/debian';
}

/**
 * debootstrap minbase (+ packages) into `target`, in a mount namespace of its own: the /proc
 * and /sys it mounts there go with it, even when it is killed, so that removing or copying
 * an unfinished tree never walks into this machine's. For the golden rootfs and image bases.
 */
export async function debootstrapMinbase(arch: string, suite: string, packages: string[], target: string, mirror: string): Promise<void> {
  const include = packages.length ? [`--include=${packages.join(',')}`] : [];
  await run`unshare --mount --propagation private debootstrap --arch=${arch} --variant=minbase ${include} ${suite} ${target} ${mirror}`;
}

export function goldenKey(userland: Userland, mirror: string): string {
  const inputs = JSON.stringify({ userland, SUITE, PACKAGES, mirror, RECIPE_VERSION, SSHD_CONFIG, PI_CMDLINE, LAB_UNITS, CONTAINERD_CONFIG });
  return `${userland}-${createHash('sha256').update(inputs).digest('hex').slice(0, 16)}`;
}

async function setUpRootfs(rootfs: string, userland: Userland): Promise<void> {
  const inRoot = (p: string) => join(rootfs, p);
  for (const [name, text] of Object.entries(LAB_UNITS)) {
    await writeFile(inRoot(`etc/systemd/system/${name}`), text);
    await mkdir(inRoot('etc/systemd/system/multi-user.target.wants'), { recursive: true });
    await symlink(`/etc/systemd/system/${name}`, inRoot(`etc/systemd/system/multi-user.target.wants/${name}`));
  }
  await mkdir(inRoot('etc/armlab-lab'), { recursive: true });
  await writeFile(inRoot('etc/armlab-lab/containerd.toml'), CONTAINERD_CONFIG);
  if (userland === 'armhf') {
    // The lab's containerd is this machine's amd64 build; its loader and libc are
    // bound in read-only at /usr/lib/x86_64-linux-gnu (paths no armhf file uses).
    await symlink('usr/lib64', inRoot('lib64'));
    await mkdir(inRoot('usr/lib64'), { recursive: true });
    await symlink('/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', inRoot('usr/lib64/ld-linux-x86-64.so.2'));
  }
  await run`chroot ${rootfs} /usr/sbin/useradd --create-home --shell /bin/bash --groups sudo --uid 1000 pi`;
  await writeFile(inRoot('etc/sudoers.d/010_pi-nopasswd'), 'pi ALL=(ALL) NOPASSWD: ALL\n', { mode: 0o440 });
  await run`sh -c ${`rm -f ${rootfs}/etc/ssh/ssh_host_*`}`;
  await mkdir(inRoot('etc/ssh/sshd_config.d'), { recursive: true });
  await writeFile(inRoot('etc/ssh/sshd_config.d/armlab-lab.conf'), SSHD_CONFIG);
  await mkdir(inRoot('boot/firmware'), { recursive: true });
  await writeFile(inRoot('boot/firmware/cmdline.txt'), `${PI_CMDLINE}\n`);
  await writeFile(inRoot('etc/machine-id'), '');
  await rm(inRoot('var/cache/apt/archives'), { recursive: true, force: true });
  await mkdir(inRoot('var/cache/apt/archives/partial'), { recursive: true });
}

/** Path of a ready golden rootfs for `userland`, building it if the cache lacks it. */
export async function ensureGolden(userland: Userland, log: (msg: string) => void = () => {}): Promise<string> {
  const mirror = await debianMirror();
  const dir = join(cacheRoot(), 'golden', goldenKey(userland, mirror));
  const rootfs = join(dir, 'rootfs');
  const done = join(dir, 'complete');
  if (existsSync(done)) return rootfs;

  return withBuildLock(join(cacheRoot(), 'golden', `${userland}.lock`), async () => {
    if (existsSync(done)) return rootfs;
    const tmp = join(dir, `build-${process.pid}`);
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    log(`building the golden ${userland} rootfs with debootstrap (a few minutes, cached in ${dir})`);
    try {
      await debootstrapMinbase(userland, SUITE, PACKAGES, tmp, mirror);
      await setUpRootfs(tmp, userland);
      await rm(rootfs, { recursive: true, force: true });
      await rename(tmp, rootfs);
      await writeFile(done, `${new Date().toISOString()}\n`);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
    return rootfs;
  });
}
