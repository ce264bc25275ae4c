/** What a Raspberry Pi 4 running Pi OS 32-bit shows in /proc/cpuinfo (4 cores). */
export function piCpuinfo(serial: string): string {
  const core = (n: number) =>
    [
      `processor\t: ${n}`,
      'model name\t: ARMv7 Processor rev 3 (v7l)',
      'BogoMIPS\t: 108.00',
      'Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32',
      'CPU implementer\t: 0x41',
      'CPU architecture: 7',
      'CPU variant\t: 0x0',
      'CPU part\t: 0xd08',
      'CPU revision\t: 3',
      '',
    ].join('\n');
  return `${[0, 1, 2, 3].map(core).join('\n')}\nHardware\t: BCM2835\nRevision\t: c03114\nSerial\t\t: ${serial}\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n`;
}

/** containerd for one host: every path inside the host's own root or state. */
export function containerdConfig(hostDir: string): string {
  const root = `${hostDir}/root`;
  return [
    'version = 2',
    `root = "${hostDir}/containerd"`,
    `state = "${root}/run/containerd"`,
    // The lab only stores and imports images; CRI would want CNI and a kubelet.
    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]',
    '',
    '[grpc]',
    `  address = "${root}/run/k3s/containerd/containerd.sock"`,
    '',
    '[ttrpc]',
    `  address = "${root}/run/k3s/containerd/containerd.sock.ttrpc"`,
    '',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = "${hostDir}/containerd-opt"`,
    '',
  ].join('\n');
}
