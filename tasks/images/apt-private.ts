/**
 * apt on a private state: its own lists, cache, sources.list and dpkg status,
 * for one architecture, so that this machine's apt (its architectures, lists
 * and installed packages) is neither used nor changed: no dpkg
 * --add-architecture. This machine's sources.list.d and pins are shut out, so
 * what apt offers is Debian's; its apt.conf.d still applies, where a site puts
 * its proxy and transport settings. Used to fetch a recipe's .debs and to read
 * what the index offers now (the nightly).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface PrivateApt {
  arch: string;
  mirror: string;
  suite: string;
  /** The dpkg status apt judges against: a base rootfs's, or an empty one. */
  status: string;
}

/** Make the state under `dir` and return the apt options that use it. */
export async function privateAptState(dir: string, apt: PrivateApt): Promise<string[]> {
  await mkdir(join(dir, 'state', 'lists', 'partial'), { recursive: true });
  await mkdir(join(dir, 'cache', 'archives', 'partial'), { recursive: true });
  await writeFile(join(dir, 'sources.list'), `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${apt.mirror} ${apt.suite} main\n`);
  return [
    '-o', `APT::Architecture=${apt.arch}`, '-o', `APT::Architectures::=${apt.arch}`,
    '-o', `Dir::State=${join(dir, 'state')}`, '-o', `Dir::State::status=${apt.status}`,
    '-o', `Dir::Cache=${join(dir, 'cache')}`, '-o', `Dir::Etc::SourceList=${join(dir, 'sources.list')}`,
    '-o', 'Dir::Etc::SourceParts=/dev/null', '-o', 'Debug::NoLocking=1', '-o', 'APT::Get::List-Cleanup=0',
    '-o', 'Dir::Etc::Preferences=/dev/null', '-o', 'Dir::Etc::PreferencesParts=/dev/null',
  ];
}
