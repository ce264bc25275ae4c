/**
 * What makes a lab host look and behave like a Pi: its cpuinfo and
 * device-tree model, and the lab's own units (identity mounts, containerd).
 */

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

export const PI_MODEL = 'Raspberry Pi 4 Model B Rev 1.4';

/** Where the machine's containerd and ctr are bound into every host (read-only). */
export const LAB_BIN = '/usr/local/lib/armlab-lab';

/** containerd inside a host, where k3s's embedded containerd would listen. */
export const CONTAINERD_CONFIG = [
  'version = 2',
  'root = "/var/lib/containerd"',
  'state = "/run/containerd"',
  // The lab stores and imports images; CRI would want CNI and a kubelet.
  'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]',
  '',
  '[grpc]',
  '  address = "/run/k3s/containerd/containerd.sock"',
  '',
  '[ttrpc]',
  '  address = "/run/k3s/containerd/containerd.sock.ttrpc"',
  '',
].join('\n');

export const LAB_UNITS: Record<string, string> = {
  'armlab-lab-identity.service': `[Unit]
Description=armlab lab: Raspberry Pi identity (cpuinfo, device-tree model)
ConditionPathExists=/etc/armlab-lab/cpuinfo
DefaultDependencies=no
After=local-fs.target
Before=sysinit.target ssh.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/mount --bind /etc/armlab-lab/cpuinfo /proc/cpuinfo
ExecStart=/bin/mount -t tmpfs -o mode=755 tmpfs /sys/firmware
ExecStart=/bin/mkdir -p /sys/firmware/devicetree/base
ExecStart=/bin/cp /etc/armlab-lab/model /sys/firmware/devicetree/base/model

[Install]
WantedBy=multi-user.target
`,
  'armlab-lab-containerd.service': `[Unit]
Description=armlab lab: containerd on k3s's socket path
After=local-fs.target

[Service]
ExecStartPre=/bin/mkdir -p /run/k3s/containerd
ExecStart=${LAB_BIN}/containerd --config /etc/armlab-lab/containerd.toml
Restart=always
KillMode=process

[Install]
WantedBy=multi-user.target
`,
};
