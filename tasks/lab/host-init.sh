#!/bin/bash
# PID 1 of one emulated Pi, run with this machine's tools inside the host's
# network namespace and fresh mount/uts/ipc/pid namespaces (see host.ts).
# It assembles the host's root (overlay over the golden rootfs), starts the
# host's containerd, then becomes the host's sshd, chrooted into that root.
set -euo pipefail
: "${ARMLAB_LOWER:?}" "${ARMLAB_HOSTDIR:?}" "${ARMLAB_HOSTNAME:?}" "${ARMLAB_PUBKEY:?}" "${ARMLAB_PI_IDENTITY:?}"
dir=$ARMLAB_HOSTDIR
root=$dir/root

mount -t overlay overlay -o "lowerdir=$ARMLAB_LOWER,upperdir=$dir/upper,workdir=$dir/work" "$root"
hostname "$ARMLAB_HOSTNAME"

mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
# runc and dockerd need the cgroup hierarchy; a fresh sysfs mount hides it.
mount --rbind /sys/fs/cgroup "$root/sys/fs/cgroup"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=755 tmpfs "$root/run"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"

if [ "$ARMLAB_PI_IDENTITY" = yes ]; then
  # A Raspberry Pi 4 as Pi OS 32-bit sees itself: cpuinfo and device-tree model.
  mount --bind "$dir/cpuinfo" "$root/proc/cpuinfo"
  mount -t tmpfs -o mode=755 tmpfs "$root/sys/firmware"
  mkdir -p "$root/sys/firmware/devicetree/base"
  printf 'Raspberry Pi 4 Model B Rev 1.4\0' > "$root/sys/firmware/devicetree/base/model"
fi

# containerd cannot keep its snapshots on overlayfs: plain directories, as on a Pi's ext4.
mkdir -p "$root/var/lib/rancher" "$root/var/lib/containerd"
mount --bind "$dir/rancher" "$root/var/lib/rancher"
mount --bind "$dir/containerd" "$root/var/lib/containerd"

# First boot of this "SD card": identity files, kept in the upper dir afterwards.
if [ ! -s "$root/etc/ssh/ssh_host_ed25519_key" ]; then
  install -m 600 "$dir/ssh_host_ed25519_key" "$root/etc/ssh/ssh_host_ed25519_key"
  install -m 644 "$dir/ssh_host_ed25519_key.pub" "$root/etc/ssh/ssh_host_ed25519_key.pub"
fi
if [ ! -s "$root/etc/machine-id" ]; then
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$root/etc/machine-id"
  echo >> "$root/etc/machine-id"
fi
echo "$ARMLAB_HOSTNAME" > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$ARMLAB_HOSTNAME" > "$root/etc/hosts"
for home in root home/pi; do
  install -d -m 700 "$root/$home/.ssh"
  printf '%s\n' "$ARMLAB_PUBKEY" > "$root/$home/.ssh/authorized_keys"
  chmod 600 "$root/$home/.ssh/authorized_keys"
done
chown -R 1000:1000 "$root/home/pi/.ssh"

mkdir -p "$root/run/sshd" "$root/run/k3s/containerd"
chmod 711 "$root/run/k3s"
# This machine's containerd, with every path inside the host (see containerd.toml).
containerd --config "$dir/containerd.toml" >> "$dir/containerd.log" 2>&1 &

exec chroot "$root" /usr/sbin/sshd -D -e
