import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluate, floatAbiOf, parseIptables, verdict } from '../../tasks/preflight/evaluate.ts';
import { parseProbe } from '../../tasks/preflight/probe.ts';
import type { NodeSpec } from '../../tasks/inventory/types.ts';

const node: NodeSpec = {
  name: 'pi1', address: '10.0.0.1', role: 'server', labels: {}, user: 'pi', port: 22, privateKey: '/k', knownHosts: '/kh',
  become: true, connectTimeoutMs: 1000, commandTimeoutMs: 1000,
};

// First 40 bytes of real ELF headers: armhf /bin/true (EABI5, hard-float), armel (soft), amd64.
const ELF_ARMHF = '7f 45 4c 46 01 01 01 00 00 00 00 00 00 00 00 00 03 00 28 00 01 00 00 00 11 0b 00 00 34 00 00 00 f0 4e 00 00 00 04 00 05';
const ELF_ARMEL = '7f 45 4c 46 01 01 01 00 00 00 00 00 00 00 00 00 03 00 28 00 01 00 00 00 11 0b 00 00 34 00 00 00 f0 4e 00 00 00 02 00 05';
const ELF_AMD64 = '7f 45 4c 46 02 01 01 00 00 00 00 00 00 00 00 00 03 00 3e 00 01 00 00 00 a0 25 00 00 00 00 00 00 40 00 00 00 00 00 00 00';

const now = Date.now();
const clock = { sentAt: now - 100, receivedAt: now + 100 };
const good = {
  clock: String(now / 1000), uid: '0', kernel_arch: 'armv7l', userland_arch: 'armhf', elf_header: ELF_ARMHF,
  model: 'Raspberry Pi 4 Model B Rev 1.4', cpu_hardware: 'BCM2835', os: 'Debian GNU/Linux 12 (bookworm)',
  cmdline_file: '/boot/firmware/cmdline.txt', cmdline_txt: 'console=tty1 cgroup_memory=1 cgroup_enable=memory',
  cgroup_memory_v1: '1', swap_kb: '0', iptables_version: 'iptables v1.8.9 (nf_tables)', iptables_target: '/usr/sbin/xtables-nft-multi',
  disk_path: '/var/lib', disk_free_kb: String(20 * 1024 * 1024), vxlan: 'available',
};

const level = (facts: Record<string, string>, name: string, n: NodeSpec = node) => evaluate(n, facts, clock).find((c) => c.name === name)?.level;

test('ELF headers tell hard-float from soft-float', () => {
  assert.deepEqual(floatAbiOf(ELF_ARMHF), { machine: 'arm', abi: 'hard' });
  assert.deepEqual(floatAbiOf(ELF_ARMEL), { machine: 'arm', abi: 'soft' });
  assert.deepEqual(floatAbiOf(ELF_AMD64), { machine: 'x86-64', abi: 'n/a' });
  assert.deepEqual(floatAbiOf(''), { machine: 'unknown', abi: 'unknown' });
});

test('a healthy armhf Pi is ready with no warning', () => {
  const checks = evaluate(node, good, clock);
  assert.deepEqual(checks.filter((c) => c.level !== 'ok'), []);
  assert.deepEqual(verdict(checks), { ok: true, reason: 'ready' });
});

test('soft-float and non-armhf userlands are refused with the reason', () => {
  const armel = verdict(evaluate(node, { ...good, userland_arch: 'armel', elf_header: ELF_ARMEL }, clock));
  assert.equal(armel.ok, false);
  assert.match(armel.reason, /^refused: soft-float \(armel\) userland: armlab builds armv7 hard-float/);
  const amd64 = verdict(evaluate(node, { ...good, kernel_arch: 'x86_64', userland_arch: 'amd64', elf_header: ELF_AMD64 }, clock));
  assert.match(amd64.reason, /^refused: userland is amd64, not armhf/);
  // A builder may be any architecture; Pi OS 32-bit on a 64-bit kernel is fine.
  assert.equal(level({ ...good, userland_arch: 'amd64', elf_header: ELF_AMD64 }, 'arch', { ...node, role: 'builder' }), 'ok');
  assert.equal(level({ ...good, kernel_arch: 'aarch64' }, 'arch'), 'ok');
  assert.equal(evaluate(node, { ...good, kernel_arch: 'aarch64' }, clock).find((c) => c.name === 'arch')!.value, 'aarch64 kernel, armhf userland');
});

test('fixable problems are warnings; blocking ones are failures', () => {
  assert.equal(level({ ...good, cgroup_memory_v1: '0' }, 'memory cgroup'), 'warn');
  assert.equal(level({ ...good, swap_kb: '102396' }, 'swap'), 'warn');
  assert.equal(level({ ...good, iptables_version: 'iptables v1.8.3 (legacy)' }, 'iptables'), 'warn');
  assert.equal(level({ ...good, iptables_version: 'iptables v1.6.1' }, 'iptables'), 'warn');
  assert.equal(level({ ...good, iptables_version: '', iptables_target: '' }, 'iptables'), 'ok');
  assert.equal(level({ ...good, disk_free_kb: String(512 * 1024) }, 'disk'), 'fail');
  assert.equal(level({ ...good, disk_free_kb: String(2 * 1024 * 1024) }, 'disk'), 'warn');
  assert.equal(level({ ...good, vxlan: 'missing' }, 'vxlan'), 'fail');
  assert.equal(level({ ...good, uid: '1000' }, 'sudo'), 'fail');
  assert.equal(level({ ...good, model: '', cpu_hardware: '' }, 'model'), 'warn');
  assert.equal(level({ ...good, clock: String(now / 1000 + 10) }, 'clock'), 'warn');
  assert.equal(level({ ...good, clock: String(now / 1000 - 120) }, 'clock'), 'fail');
});

test('iptables versions and backends, from --version or dpkg plus alternatives', () => {
  assert.deepEqual(parseIptables('iptables v1.8.9 (nf_tables)', ''), { version: '1.8.9', backend: 'nf_tables' });
  assert.deepEqual(parseIptables('1.8.9-2', '/usr/sbin/xtables-legacy-multi'), { version: '1.8.9', backend: 'legacy' });
});

test('probe output parses into facts, values may contain "="', () => {
  assert.deepEqual(parseProbe('a=1\nproc_cmdline=root=/dev/x quiet\nnoise\n'), { a: '1', proc_cmdline: 'root=/dev/x quiet' });
});
