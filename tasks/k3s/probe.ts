/**
 * Read-only k3s probe of one node, one round trip: architecture, installed
 * k3s, digests of what armlab wrote, services, Pi preparation facts.
 */
import { sh, type Command } from '../core/shell.ts';
import { KERNEL_FACTS, KV_FUNCTION, parseProbe } from '../preflight/probe.ts';
import { k3sArchOf, k3sBuildOf, parseK3sVersion } from './artifacts.ts';
import { CMDLINE_FILES } from './cmdline.ts';
import { CONFIG_PATH, INSTALL_RECORD, SERVER_TOKEN_PATH, TOKEN_FILE } from './config.ts';

export const SERVICES = ['k3s', 'k3s-agent'] as const;
export type Service = (typeof SERVICES)[number];

// Few processes on purpose: every fork is slow on a Pi 3 (and slower still on
// an emulated one), so files are read with bash builtins and the three digests
// come from one sha256sum.
export const K3S_PROBE: Command = sh`
${KV_FUNCTION}
sums=''
tok=''
if [ -s ${SERVER_TOKEN_PATH} ]; then read -r tok < ${SERVER_TOKEN_PATH} || true; fi
# A server's token digested as a joiner's token file holds it (one line, the
# here-string adds the newline): the joiners are checked without reading it back.
if [ -n "$tok" ]; then sums=$(sha256sum /usr/local/bin/k3s ${CONFIG_PATH} ${TOKEN_FILE} - <<< "$tok" 2>/dev/null || true)
else sums=$(sha256sum /usr/local/bin/k3s ${CONFIG_PATH} ${TOKEN_FILE} 2>/dev/null || true); fi
tok=''
sum_of() { REPLY=''; local line; while IFS= read -r line; do if [[ $line == *"  $1" ]]; then REPLY=\${line%% *}; fi; done <<< "$sums"; }
kv kernel_arch "$(uname -m)"
kv userland_arch "$(dpkg --print-architecture 2>/dev/null || true)"
v=''
if [ -x /usr/local/bin/k3s ]; then v=$(/usr/local/bin/k3s --version 2>/dev/null || true); fi
kv version "\${v%%$'\\n'*}"
sum_of /usr/local/bin/k3s; kv binary_sha256 "$REPLY"
sum_of ${CONFIG_PATH}; kv config_sha256 "$REPLY"
sum_of ${TOKEN_FILE}; kv token_sha256 "$REPLY"
sum_of -; kv server_token_sha256 "$REPLY"
rec=''
if [ -f ${INSTALL_RECORD} ]; then read -r rec < ${INSTALL_RECORD} || true; fi
kv install_record "$rec"
active=$(systemctl is-active k3s k3s-agent 2>/dev/null || true)
{ read -r a1 || true; read -r a2 || true; } <<< "$active"
if [ -f /etc/systemd/system/k3s.service ]; then kv unit_k3s present; else kv unit_k3s ''; fi
kv active_k3s "$a1"
if [ -f /etc/systemd/system/k3s-agent.service ]; then kv unit_k3s-agent present; else kv unit_k3s-agent ''; fi
kv active_k3s-agent "$a2"
read -r boot_id < /proc/sys/kernel/random/boot_id
read -r -a init_stat < /proc/1/stat
kv boot "$boot_id \${init_stat[21]}"
f=''
for c in ${CMDLINE_FILES}; do if [ -f "$c" ]; then f=$c; break; fi; done
kv cmdline_file "$f"
if [ -n "$f" ]; then kv cmdline_base64 "$(base64 -w0 "$f")"; else kv cmdline_base64 ''; fi
${KERNEL_FACTS}
kv proc_cmdline "$proc_cmdline"
if [[ $memory_v1 == 1 || " $controllers " == *" memory "* ]]; then kv memcg on; else kv memcg off; fi
kv swap_kb "$swap_kb"
fstab_swap=0
if [ -r /etc/fstab ]; then
  while read -r dev _ type _; do if [[ -n $dev && $dev != '#'* && $type == swap ]]; then fstab_swap=$((fstab_swap + 1)); fi; done < /etc/fstab
fi
kv fstab_swap "$fstab_swap"
if command -v dphys-swapfile >/dev/null 2>&1; then kv dphys_swapfile "$(systemctl is-enabled dphys-swapfile 2>/dev/null || echo present)"; else kv dphys_swapfile ''; fi
if command -v iptables >/dev/null 2>&1; then kv iptables_version "$(iptables --version 2>/dev/null || dpkg-query -W -f='\${Version}' iptables 2>/dev/null || true)"; else kv iptables_version ''; fi
kv iptables_alternative "$(readlink /etc/alternatives/iptables 2>/dev/null || true)"
`;

export interface K3sFacts {
  /** The k3s release's architecture, chosen by userland (k3sArchOf): armhf, arm64, amd64. */
  arch: string;
  /** `uname -m`, for messages (an aarch64 kernel may run an armhf userland). */
  kernelArch: string;
  version: string | null;
  /** The version with the build the binary names (`v1.31.12+k3s1 (abcdef12)`), as `k3s --version` says it. */
  build: string | null;
  binarySha256: string;
  configSha256: string;
  tokenSha256: string;
  /** On a server: sha256 of the token file a joiner would get from it ('' before the server made it). */
  serverTokenSha256: string;
  installRecord: string;
  /** The installed service (k3s or k3s-agent), if a unit exists. */
  unit: Service | null;
  active: Record<Service, string>;
  boot: string;
  cmdlineFile: string;
  /** The boot command line file's whole content (base64 in the probe: it may hold several lines). */
  cmdline: string;
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
    arch: k3sArchOf(f.kernel_arch ?? '', f.userland_arch ?? ''),
    kernelArch: f.kernel_arch ?? '',
    version: parseK3sVersion(f.version ?? ''),
    build: k3sBuildOf(f.version ?? ''),
    binarySha256: f.binary_sha256 ?? '',
    configSha256: f.config_sha256 ?? '',
    tokenSha256: f.token_sha256 ?? '',
    serverTokenSha256: f.server_token_sha256 ?? '',
    installRecord: f.install_record ?? '',
    unit,
    active: { k3s: f.active_k3s ?? '', 'k3s-agent': f['active_k3s-agent'] ?? '' },
    boot: f.boot ?? '',
    cmdlineFile: f.cmdline_file ?? '',
    cmdline: Buffer.from(f.cmdline_base64 ?? '', 'base64').toString('utf8'),
    procCmdline: f.proc_cmdline ?? '',
    memcg: f.memcg === 'off' ? 'off' : 'on',
    swapKb: Number(f.swap_kb ?? 0),
    fstabSwap: Number(f.fstab_swap ?? 0),
    dphysSwapfile: f.dphys_swapfile ?? '',
    iptablesVersion: /(\d+\.\d+\.\d+)/.exec(f.iptables_version ?? '')?.[1] ?? '',
    iptablesAlternative: f.iptables_alternative ?? '',
  };
}
