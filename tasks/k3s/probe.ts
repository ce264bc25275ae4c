/**
 * Read-only k3s probe of one node, one round trip: architecture, installed
 * k3s, digests of what armlab wrote, services, Pi preparation facts.
 */
import { sh, type Command } from '../core/shell.ts';
import { parseProbe } from '../preflight/probe.ts';
import { parseK3sVersion } from './artifacts.ts';
import { CMDLINE_FILES } from './cmdline.ts';
import { CONFIG_PATH, INSTALL_RECORD, TOKEN_FILE } from './config.ts';

export const SERVICES = ['k3s', 'k3s-agent'] as const;
export type Service = (typeof SERVICES)[number];

export const K3S_PROBE: Command = sh`
kv() { printf '%s=%s\\n' "$1" "$(printf '%s' "$2" | tr '\\n' ' ')"; }
digest() { if [ -f "$1" ]; then sha256sum "$1" | cut -d' ' -f1; fi; }
kv arch "$(uname -m)"
kv version "$(if [ -x /usr/local/bin/k3s ]; then /usr/local/bin/k3s --version 2>/dev/null | head -n1 || true; fi)"
kv binary_sha256 "$(digest /usr/local/bin/k3s)"
kv config_sha256 "$(digest ${CONFIG_PATH})"
kv token_sha256 "$(digest ${TOKEN_FILE})"
kv install_record "$(cat ${INSTALL_RECORD} 2>/dev/null || true)"
for s in k3s k3s-agent; do
  kv "unit_$s" "$(if [ -f /etc/systemd/system/$s.service ]; then echo present; fi)"
  kv "active_$s" "$(systemctl is-active $s 2>/dev/null || true)"
done
kv boot "$(cat /proc/sys/kernel/random/boot_id) $(cut -d' ' -f22 /proc/1/stat)"
f=''
for c in ${CMDLINE_FILES}; do if [ -f "$c" ]; then f=$c; break; fi; done
kv cmdline_file "$f"
kv cmdline_sha256 "$(digest "$f")"
kv proc_cmdline "$(cat /proc/cmdline)"
kv memcg "$(if awk '$1 == "memory" && $4 == 1 { found = 1 } END { exit !found }' /proc/cgroups 2>/dev/null || grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then echo on; else echo off; fi)"
kv swap_kb "$(awk 'NR > 1 { s += $3 } END { print s + 0 }' /proc/swaps)"
kv fstab_swap "$(awk '$1 !~ /^#/ && $3 == "swap"' /etc/fstab 2>/dev/null | wc -l)"
kv dphys_swapfile "$(if command -v dphys-swapfile >/dev/null 2>&1; then systemctl is-enabled dphys-swapfile 2>/dev/null || echo present; fi)"
kv iptables_version "$(if command -v iptables >/dev/null 2>&1; then iptables --version 2>/dev/null || dpkg-query -W -f='\${Version}' iptables 2>/dev/null || true; fi)"
kv iptables_alternative "$(update-alternatives --query iptables 2>/dev/null | sed -n 's/^Value: //p')"
`;

export interface K3sFacts {
  arch: string;
  version: string | null;
  binarySha256: string;
  configSha256: string;
  tokenSha256: string;
  installRecord: string;
  /** The installed service (k3s or k3s-agent), if a unit exists. */
  unit: Service | null;
  active: Record<Service, string>;
  boot: string;
  cmdlineFile: string;
  cmdlineSha256: string;
  /** The command line the kernel booted with. */
  procCmdline: string;
  memcg: 'on' | 'off';
  swapKb: number;
  /** Uncommented swap lines in /etc/fstab (they turn swap back on at boot). */
  fstabSwap: number;
  dphysSwapfile: string;
  iptablesVersion: string;
  iptablesAlternative: string;
}

export function parseK3sProbe(stdout: string): K3sFacts {
  const f = parseProbe(stdout);
  const unit = f.unit_k3s === 'present' ? 'k3s' : f['unit_k3s-agent'] === 'present' ? 'k3s-agent' : null;
  return {
    arch: f.arch ?? '',
    version: parseK3sVersion(f.version ?? ''),
    binarySha256: f.binary_sha256 ?? '',
    configSha256: f.config_sha256 ?? '',
    tokenSha256: f.token_sha256 ?? '',
    installRecord: f.install_record ?? '',
    unit,
    active: { k3s: f.active_k3s ?? '', 'k3s-agent': f['active_k3s-agent'] ?? '' },
    boot: f.boot ?? '',
    cmdlineFile: f.cmdline_file ?? '',
    cmdlineSha256: f.cmdline_sha256 ?? '',
    procCmdline: f.proc_cmdline ?? '',
    memcg: f.memcg === 'off' ? 'off' : 'on',
    swapKb: Number(f.swap_kb ?? 0),
    fstabSwap: Number(f.fstab_swap ?? 0),
    dphysSwapfile: f.dphys_swapfile ?? '',
    iptablesVersion: /(\d+\.\d+\.\d+)/.exec(f.iptables_version ?? '')?.[1] ?? '',
    iptablesAlternative: f.iptables_alternative ?? '',
  };
}
