/**
 * A slim debootstrap rootfs, as Debian's own "slim" container images are made
 * (debuerreotype's scripts/.slimify-excludes and .slimify-includes, read at
 * fe6f344f and 06d6c488): documentation, manual pages and message catalogues
 * removed, and a dpkg configuration that keeps every later `apt-get install`
 * in an image built on it from adding them again. The copyright files stay.
 * With it, dpkg's unsafe-io setting for those installs (UNSAFE_IO_CONFIG).
 * On a Pi every image's layers go through `k3s ctr images import` on an SD
 * card; in the minbase rootfs these folders were 47 of 110 MB.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../core/local.ts';

/** Folders whose files go (dpkg path-exclude patterns). */
export const SLIM_EXCLUDE = ['/usr/share/doc/*', '/usr/share/info/*', '/usr/share/linda/*', '/usr/share/lintian/overrides/*', '/usr/share/locale/*', '/usr/share/man/*'];
/** Files under them that stay: licences, and the locale tables glibc and gettext read. */
export const SLIM_INCLUDE = ['/usr/share/doc/*/copyright', '/usr/share/locale/locale.alias', '/usr/share/locale/all_languages', '/usr/share/locale/languages'];

export const SLIM_DPKG_CONFIG = '/etc/dpkg/dpkg.cfg.d/armlab-slim';

/**
 * No fsync after each file dpkg unpacks, in every `apt-get install` of an image build on this
 * base: debuerreotype's docker-apt-speedup (scripts/debuerreotype-minimizing-config at 799473be).
 * A build cut short is built again from scratch. In k8s-topo's install under armv7 emulation the
 * unpacking took 64 s with it and 79 s without.
 */
export const UNSAFE_IO_CONFIG = '/etc/dpkg/dpkg.cfg.d/armlab-apt-speedup';
export const UNSAFE_IO_TEXT = "# armlab: image builds only; a build cut short is made again from scratch.\nforce-unsafe-io\n";

/** The dpkg configuration file: the last pattern a path matches decides, so the includes come after the excludes. */
export function renderSlimDpkgConfig(): string {
  return [
    '# armlab: a slim image base, as Debian\'s slim images: no docs, manual pages or translations;',
    '# every later package install keeps them out too. Remove this file to get them back.',
    ...SLIM_EXCLUDE.map((p) => `path-exclude ${p}`),
    ...SLIM_INCLUDE.map((p) => `path-include ${p}`),
    '',
  ].join('\n');
}

/** Everything slimRootfs decides (its filter and the unsafe-io setting), for the keys of rootfs caches it slimmed. */
export function slimIdentity(): string {
  return renderSlimDpkgConfig() + UNSAFE_IO_TEXT;
}

/** Remove what the configuration excludes from a rootfs debootstrap made (it unpacks without dpkg's filters), then write it and the unsafe-io setting. */
export async function slimRootfs(rootfs: string): Promise<void> {
  const keep = SLIM_INCLUDE.flatMap((p, i) => [...(i ? ['-o'] : []), '-path', join(rootfs, p)]);
  for (const pattern of SLIM_EXCLUDE) {
    const dir = join(rootfs, pattern.slice(0, -2));
    if (!existsSync(dir)) continue;
    // Files and links first (a kept file keeps its folder), then the folders left empty, deepest first.
    await run`find ${dir} -mindepth 1 -not -type d -not ${'('} ${keep} ${')'} -delete`;
    await run`find ${dir} -mindepth 1 -depth -type d -empty -delete`;
  }
  await mkdir(join(rootfs, 'etc/dpkg/dpkg.cfg.d'), { recursive: true });
  await writeFile(join(rootfs, SLIM_DPKG_CONFIG), renderSlimDpkgConfig());
  await writeFile(join(rootfs, UNSAFE_IO_CONFIG), UNSAFE_IO_TEXT);
}
