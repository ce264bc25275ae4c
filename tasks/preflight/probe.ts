/**
 * The read-only probe: one script, one round trip (hosts under emulation take
 * ~0.5 s per command), printing `key=value` lines that parseProbe reads.
 * (Backslashes are doubled: `sh` takes the template's cooked text.)
 */
import { sh, type Command } from '../core/shell.ts';

export const PROBE: Command = sh`
kv() { printf '%s=%s\\n' "$1" "$(printf '%s' "$2" | tr '\\n' ' ')"; }
kv clock "$(date +%s.%N)"
kv uid "$(id -u)"
kv kernel_arch "$(uname -m)"
kv userland_arch "$(dpkg --print-architecture 2>/dev/null || echo unknown)"
kv elf_header "$(od -An -tx1 -N40 /bin/true 2>/dev/null | tr -s ' \\n' ' ')"
model=''
for f in /sys/firmware/devicetree/base/model /proc/device-tree/model; do
  if [ -r "$f" ]; then model=$(tr -d '\\0' < "$f"); break; fi
done
kv model "$model"
kv cpu_hardware "$(sed -n 's/^Hardware[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
kv os "$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
cmdline_file=''
for f in /boot/firmware/cmdline.txt /boot/cmdline.txt; do
  if [ -f "$f" ]; then cmdline_file=$f; break; fi
done
kv cmdline_file "$cmdline_file"
kv cmdline_txt "$( [ -n "$cmdline_file" ] && head -n1 "$cmdline_file" || true)"
kv proc_cmdline "$(cat /proc/cmdline)"
kv cgroup_memory_v1 "$(awk '$1 == "memory" { print $4 }' /proc/cgroups 2>/dev/null)"
kv cgroup_v2_controllers "$(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null || true)"
kv swap_kb "$(awk 'NR > 1 { s += $3 } END { print s + 0 }' /proc/swaps)"
kv dphys_swapfile "$(if [ -e /etc/dphys-swapfile ] || [ -e /sbin/dphys-swapfile ] || [ -e /usr/sbin/dphys-swapfile ]; then echo present; else echo absent; fi)"
ipt=$(command -v iptables || true)
kv iptables_version "$(if [ -n "$ipt" ]; then iptables --version 2>/dev/null || dpkg-query -W -f='\${Version}' iptables 2>/dev/null || true; fi)"
kv iptables_target "$(if [ -n "$ipt" ]; then readlink -f "$ipt"; fi)"
p=/var/lib/rancher
while [ ! -e "$p" ]; do p=$(dirname "$p"); done
kv disk_path "$p"
kv disk_free_kb "$(df -Pk "$p" | awk 'NR == 2 { print $4 }')"
kv vxlan "$(if [ -d /sys/module/vxlan ]; then echo loaded; elif modinfo vxlan >/dev/null 2>&1; then echo available; elif grep -qs '/vxlan.ko' "/lib/modules/$(uname -r)/modules.builtin"; then echo builtin; else echo missing; fi)"
kv mem_total_kb "$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
`;

export type Facts = Record<string, string>;

export function parseProbe(stdout: string): Facts {
  const facts: Facts = {};
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) facts[line.slice(0, eq)] = line.slice(eq + 1).trim();
  }
  return facts;
}
