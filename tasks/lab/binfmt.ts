/**
 * armv7 emulation for armhf hosts: qemu-arm registered with binfmt_misc, with
 * the O and C flags on top of Debian's P F so that setuid programs (sudo)
 * work inside an armhf rootfs.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { run, succeeds } from '../core/local.ts';

const BINFMT = '/proc/sys/fs/binfmt_misc';
const ENTRY = `${BINFMT}/qemu-arm`;

function escapeHex(hex: string): string {
  return hex.replace(/(..)/g, '\\x$1');
}

export async function ensureArmEmulation(): Promise<string[]> {
  const changes: string[] = [];
  if (!existsSync(`${BINFMT}/register`)) {
    await run`mount -t binfmt_misc binfmt_misc ${BINFMT}`;
    changes.push('mounted binfmt_misc');
  }
  if (!existsSync(ENTRY)) {
    if (!(await succeeds`update-binfmts --enable qemu-arm`) || !existsSync(ENTRY)) {
      throw new Error('qemu-arm is not registered with binfmt_misc; install qemu-user-static and binfmt-support');
    }
    changes.push('enabled qemu-arm');
  }
  const entry = await readFile(ENTRY, 'utf8');
  const flags = /^flags: (\S*)/m.exec(entry)?.[1] ?? '';
  if (!entry.startsWith('enabled')) {
    await writeFile(ENTRY, '1');
    changes.push('re-enabled qemu-arm');
  }
  if (!flags.includes('O') || !flags.includes('C')) {
    const interpreter = /^interpreter (\S+)/m.exec(entry)?.[1];
    const magic = /^magic (\S+)/m.exec(entry)?.[1];
    const mask = /^mask (\S+)/m.exec(entry)?.[1];
    const offset = /^offset (\d+)/m.exec(entry)?.[1] ?? '0';
    if (!interpreter || !magic || !mask) throw new Error(`cannot read ${ENTRY}`);
    await writeFile(ENTRY, '-1');
    await writeFile(`${BINFMT}/register`, `:qemu-arm:M:${offset}:${escapeHex(magic)}:${escapeHex(mask)}:${interpreter}:OCPF`);
    changes.push('re-registered qemu-arm with flags OCPF (setuid sudo in armhf hosts)');
  }
  return changes;
}
