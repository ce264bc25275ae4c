/**
 * The read-only probe: one script, one round trip (hosts under emulation take
 * ~0.5 s per command), printing `key=value` lines that parseProbe reads.
 * Files are read with bash builtins where that is as clear: every process
 * started costs on a Pi 3, and ~0.1 s on an emulated one.
 * (Backslashes are doubled: `sh` takes the template's cooked text.)
 */
import { sh, type Command } from '../core/shell.ts';

/** `kv KEY VALUE` prints `KEY=VALUE` on one line (newlines become spaces) without starting a process. */
export const KV_FUNCTION: Command = sh`kv() { local v=$2; printf '%s=%s\\n' "$1" "\${v//$'\\n'/ }"; }`;

/**
 * Kernel facts the preflight and k3s probes both read, into shell variables by
 * bash builtins: proc_cmdline, memory_v1 (the v1 memory cgroup's enabled
 * column, '' without cgroup v1), controllers (cgroup v2's), swap_kb.
 */
export const KERNEL_FACTS: Command = sh`
read -r proc_cmdline < /proc/cmdline || true
memory_v1=''
if [ -r /proc/cgroups ]; then while read -r name _ _ enabled; do if [[ $name == memory ]]; then memory_v1=$enabled; fi; done < /proc/cgroups; fi
controllers=''
if [ -r /sys/fs/cgroup/cgroup.controllers ]; then read -r controllers < /sys/fs/cgroup/cgroup.controllers || true; fi
swap_kb=0
{ read -r _ || true; while read -r _ _ _ size _; do swap_kb=$((swap_kb + size)); done; } < /proc/swaps`;

export const PROBE: Command = sh`
${KV_FUNCTION}
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
hardware=''
while IFS=: read -r key value; do if [[ -z $hardware && $key =~ ^Hardware[[:space:]]*$ ]]; then hardware=\${value# }; fi; done < /proc/cpuinfo
kv cpu_hardware "$hardware"
kv os "$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
cmdline_file=''
for f in /boot/firmware/cmdline.txt /boot/cmdline.txt; do
  if [ -f "$f" ]; then cmdline_file=$f; break; fi
done
kv cmdline_file "$cmdline_file"
cmdline_txt=''
if [ -n "$cmdline_file" ]; then read -r cmdline_txt < "$cmdline_file" || true; fi
kv cmdline_txt "$cmdline_txt"
${KERNEL_FACTS}
kv proc_cmdline "$proc_cmdline"
kv cgroup_memory_v1 "$memory_v1"
kv cgroup_v2_controllers "$controllers"
kv swap_kb "$swap_kb"
kv dphys_swapfile "$(if [ -e /etc/dphys-swapfile ] || [ -e /sbin/dphys-swapfile ] || [ -e /usr/sbin/dphys-swapfile ]; then echo present; else echo absent; fi)"
ipt=$(command -v iptables || true)
kv iptables_version "$(if [ -n "$ipt" ]; then iptables --version 2>/dev/null || dpkg-query -W -f='\${Version}' iptables 2>/dev/null || true; fi)"
kv iptables_target "$(if [ -n "$ipt" ]; then readlink -f "$ipt"; fi)"
p=/var/lib/rancher
while [ ! -e "$p" ]; do p=\${p%/*}; p=\${p:-/}; done
kv disk_path "$p"
kv disk_free_kb "$(df -Pk "$p" | awk 'NR == 2 { print $4 }')"
kv vxlan "$(if [ -d /sys/module/vxlan ]; then echo loaded; elif modinfo vxlan >/dev/null 2>&1; then echo available; elif grep -qs '/vxlan.ko' "/lib/modules/$(uname -r)/modules.builtin"; then echo builtin; else echo missing; fi)"
mem_total_kb=''
while read -r key value _; do if [[ $key == MemTotal: ]]; then mem_total_kb=$value; fi; done < /proc/meminfo
kv mem_total_kb "$mem_total_kb"
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
