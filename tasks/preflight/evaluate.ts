/**
 * Pure judgement of probe facts: each check is ok, a warning (something a
 * later task fixes, e.g. swap) or a failure (armlab cannot serve this node).
 */
import { describeArch } from '../k3s/artifacts.ts';
import type { NodeSpec } from '../inventory/types.ts';
import type { Facts } from './probe.ts';

export type Level = 'ok' | 'warn' | 'fail';

export interface Check {
  name: string;
  level: Level;
  /** Short value for the table. */
  value: string;
  /** Why, for warnings and failures. */
  why?: string;
}

export interface Clock {
  /** Local epoch ms when the probe was sent and when its answer came back. */
  sentAt: number;
  receivedAt: number;
}

const GiB = 1024 * 1024;
const K3S_MIN_FREE_KB = 1 * GiB;
const K3S_COMFORT_FREE_KB = 4 * GiB;
const CMDLINE_FLAGS = ['cgroup_memory=1', 'cgroup_enable=memory'];

export type FloatAbi = 'hard' | 'soft' | 'n/a' | 'unknown';

/** Float ABI from the first 40 bytes of an ELF (hex): ARM e_flags bits 0x400 / 0x200. */
export function floatAbiOf(elfHex: string): { machine: string; abi: FloatAbi } {
  const b = elfHex.trim().split(/\s+/).map((h) => parseInt(h, 16));
  if (b.length < 20 || b[0] !== 0x7f || b[1] !== 0x45) return { machine: 'unknown', abi: 'unknown' };
  const machine = (b[18] ?? 0) | ((b[19] ?? 0) << 8);
  const names: Record<number, string> = { 0x28: 'arm', 0x3e: 'x86-64', 0xb7: 'aarch64', 0x03: 'x86' };
  if (machine !== 0x28 || b[4] !== 1 || b.length < 40) return { machine: names[machine] ?? `0x${machine.toString(16)}`, abi: 'n/a' };
  const flags = (b[36] ?? 0) | ((b[37] ?? 0) << 8) | ((b[38] ?? 0) << 16) | ((b[39] ?? 0) << 24);
  const abi: FloatAbi = flags & 0x400 ? 'hard' : flags & 0x200 ? 'soft' : 'unknown';
  return { machine: 'arm', abi };
}

/** `iptables v1.8.9 (nf_tables)`, or a dpkg version plus the alternatives target. */
export function parseIptables(version: string, target: string): { version: string | null; backend: string } {
  const v = /(\d+\.\d+\.\d+)/.exec(version)?.[1] ?? null;
  const named = /\((nf_tables|legacy)\)/.exec(version)?.[1];
  const backend = named ?? (/nft/.test(target) ? 'nf_tables' : /legacy/.test(target) ? 'legacy' : 'unknown');
  return { version: v, backend };
}

/** `1.8.3` < `1.8.10`: dotted numeric versions, compared part by part. */
export function versionLess(a: string, b: string): boolean {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) < (pb[i] ?? 0);
  return false;
}

function gib(kb: number): string {
  return `${(kb / GiB).toFixed(1)} GiB`;
}

export function isRaspberryPi(facts: Facts): boolean {
  return /raspberry pi/i.test(facts.model ?? '') || /^BCM(2708|2709|2711|2835|2836|2837)$/.test(facts.cpu_hardware ?? '');
}

export function evaluate(node: NodeSpec, facts: Facts, clock: Clock): Check[] {
  const checks: Check[] = [];
  const add = (name: string, level: Level, value: string, why?: string) => checks.push({ name, level, value, ...(why ? { why } : {}) });

  add('sudo', facts.uid === '0' ? 'ok' : 'fail', facts.uid === '0' ? (node.user === 'root' ? 'root login' : 'works') : `uid ${facts.uid ?? '?'}`,
    facts.uid === '0' ? undefined : 'commands do not run as root; give the user passwordless sudo');

  const kernel = facts.kernel_arch ?? '?';
  const userland = facts.userland_arch ?? '?';
  const elf = floatAbiOf(facts.elf_header ?? '');
  const needsArmhf = node.role !== 'builder';
  const arch = describeArch(kernel, userland);
  if (userland === 'armel' || elf.abi === 'soft') {
    add('arch', 'fail', arch, 'soft-float (armel) userland: armlab builds armv7 hard-float (armhf) images, which cannot run here; reinstall with Raspberry Pi OS (32-bit, armhf)');
  } else if (needsArmhf && userland !== 'armhf') {
    add('arch', 'fail', arch, `userland is ${userland}, not armhf: armlab's images are linux/arm/v7 hard-float and k3s would run ${userland} images beside them; use Raspberry Pi OS (32-bit, armhf)`);
  } else {
    add('arch', 'ok', arch);
  }
  add('float', elf.abi === 'soft' ? 'fail' : 'ok', elf.abi === 'n/a' ? `n/a (${elf.machine})` : elf.abi);

  const pi = isRaspberryPi(facts);
  add('model', pi ? 'ok' : 'warn', facts.model || facts.cpu_hardware || 'unknown', pi ? undefined : 'not recognised as a Raspberry Pi (no device-tree model or BCM hardware)');
  add('os', 'ok', facts.os || 'unknown');

  const memcgOn = facts.cgroup_memory_v1 === '1' || (facts.cgroup_v2_controllers ?? '').split(' ').includes('memory');
  const cmdline = facts.cmdline_txt ?? '';
  const flagsSet = CMDLINE_FLAGS.every((f) => cmdline.split(/\s+/).includes(f));
  const cmdlineNote = facts.cmdline_file ? `${facts.cmdline_file} ${flagsSet ? 'has' : 'lacks'} the cgroup flags` : 'no cmdline.txt';
  add('memory cgroup', memcgOn ? 'ok' : 'warn', memcgOn ? 'on' : 'off', memcgOn ? undefined : `memory cgroup is off (${cmdlineNote}); k3s:prep adds ${CMDLINE_FLAGS.join(' ')} and reboots`);

  const swapKb = Number(facts.swap_kb ?? 0);
  add('swap', swapKb === 0 ? 'ok' : 'warn', swapKb === 0 ? 'off' : `${Math.round(swapKb / 1024)} MB`, swapKb === 0 ? undefined : 'swap is on; k3s:prep disables it (and dphys-swapfile)');

  const ipt = parseIptables(facts.iptables_version ?? '', facts.iptables_target ?? '');
  if (!ipt.version) add('iptables', 'ok', 'not installed', undefined);
  else if (versionLess(ipt.version, '1.6.2')) add('iptables', 'warn', `${ipt.version} ${ipt.backend}`, 'iptables older than 1.6.2; k3s:prep switches to iptables-legacy');
  else if (!versionLess(ipt.version, '1.8.0') && versionLess(ipt.version, '1.8.5')) add('iptables', 'warn', `${ipt.version} ${ipt.backend}`, 'iptables 1.8.0-1.8.4 duplicates rules; k3s:prep sets prefer-bundled-bin');
  else add('iptables', 'ok', `${ipt.version} ${ipt.backend}`);

  const freeKb = Number(facts.disk_free_kb ?? 0);
  const where = facts.disk_path ?? '/var/lib/rancher';
  if (freeKb < K3S_MIN_FREE_KB) add('disk', 'fail', gib(freeKb), `only ${gib(freeKb)} free under ${where}; k3s and the images need at least ${gib(K3S_MIN_FREE_KB)}`);
  else if (freeKb < K3S_COMFORT_FREE_KB) add('disk', 'warn', gib(freeKb), `${gib(freeKb)} free under ${where}; ${gib(K3S_COMFORT_FREE_KB)} is comfortable`);
  else add('disk', 'ok', gib(freeKb));

  const remote = Number(facts.clock ?? NaN) * 1000;
  const midpoint = (clock.sentAt + clock.receivedAt) / 2;
  const uncertainty = (clock.receivedAt - clock.sentAt) / 2;
  const skew = remote - midpoint;
  const excess = Math.max(0, Math.abs(skew) - uncertainty);
  const shown = Number.isNaN(skew) ? 'unknown' : `${skew >= 0 ? '+' : ''}${(skew / 1000).toFixed(1)}s`;
  if (Number.isNaN(skew)) add('clock', 'warn', shown, 'could not read the clock');
  else if (excess > 30_000) add('clock', 'fail', shown, `clock is ${shown} off this machine's; TLS and joins fail; enable NTP (timedatectl set-ntp true)`);
  else if (excess > 2_000) add('clock', 'warn', shown, `clock is ${shown} off this machine's; enable NTP`);
  else add('clock', 'ok', shown);

  const vxlan = facts.vxlan ?? 'missing';
  add('vxlan', vxlan === 'missing' ? 'fail' : 'ok', vxlan, vxlan === 'missing' ? 'no vxlan kernel module: flannel and meshnet VXLAN links need it; install the kernel modules package' : undefined);
  return checks;
}

export function verdict(checks: Check[]): { ok: boolean; reason: string } {
  const fails = checks.filter((c) => c.level === 'fail');
  const warns = checks.filter((c) => c.level === 'warn');
  if (fails.length > 0) return { ok: false, reason: `refused: ${fails.map((c) => c.why ?? c.name).join('; ')}` };
  if (warns.length > 0) return { ok: true, reason: `ready, ${warns.length} warning${warns.length > 1 ? 's' : ''}: ${warns.map((c) => c.why ?? c.name).join('; ')}` };
  return { ok: true, reason: 'ready' };
}
