/**
 * The Pi's kernel command line (one line, space-separated): add the memory
 * cgroup flags k3s needs, keeping every existing argument and their order.
 */
export const CGROUP_FLAGS = ['cgroup_memory=1', 'cgroup_enable=memory'] as const;

/** The cmdline files in the order Pi OS uses them: bookworm, then older releases. */
export const CMDLINE_FILES = ['/boot/firmware/cmdline.txt', '/boot/cmdline.txt'] as const;

export function withCgroupFlags(content: string): { line: string; changed: boolean } {
  // Only the first line counts for the bootloader; anything after it is dropped by the firmware.
  const first = content.split('\n')[0] ?? '';
  const args = first.trim().split(/\s+/).filter(Boolean);
  const missing = CGROUP_FLAGS.filter((f) => !args.includes(f));
  // A `cgroup_disable=memory` left in would win over the enable flag.
  const kept = args.filter((a) => a !== 'cgroup_disable=memory');
  const changed = missing.length > 0 || kept.length !== args.length || content !== `${first}\n`;
  return { line: [...kept, ...missing].join(' '), changed };
}

/**
 * A reboot is still owed when the flags are in the file but the running kernel
 * booted without them and has no memory cgroup (an earlier --no-reboot).
 */
export function rebootPending(fileHasFlags: boolean, procCmdline: string, memcg: 'on' | 'off'): boolean {
  const booted = procCmdline.split(/\s+/);
  return fileHasFlags && memcg === 'off' && !CGROUP_FLAGS.every((f) => booted.includes(f));
}
