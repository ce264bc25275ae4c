#!/bin/bash
# Supervisor of one emulated Pi, run with this machine's tools in a private
# mount namespace (see host.ts). It mounts the host's root (overlay over the
# golden rootfs: the upper dir is the host's "SD card"), writes the host's
# identity on first boot, then boots it with systemd-nspawn inside the host's
# network namespace, again after every reboot (nspawn exits 133), until it
# powers off or is killed.
set -euo pipefail
: "${ARMLAB_LOWER:?}" "${ARMLAB_HOSTDIR:?}" "${ARMLAB_HOSTNAME:?}" "${ARMLAB_NETNS:?}" "${ARMLAB_MACHINE:?}"
: "${ARMLAB_PUBKEY:?}" "${ARMLAB_USERLAND:?}" "${ARMLAB_LAB_BIN:?}" "${ARMLAB_PI_MODEL:?}"
dir=$ARMLAB_HOSTDIR
root=$dir/root

mount -t overlay overlay -o "lowerdir=$ARMLAB_LOWER,upperdir=$dir/upper,workdir=$dir/work" "$root"

# Identity, kept in the upper dir; writing through the overlay keeps owners and modes.
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
if [ "$ARMLAB_USERLAND" = armhf ]; then
  install -m 644 "$dir/cpuinfo" "$root/etc/armlab-lab/cpuinfo"
  printf '%s\0' "$ARMLAB_PI_MODEL" > "$root/etc/armlab-lab/model"
fi
# Early in a host's boot systemd sometimes cannot place the identity unit in its
# cgroup (exit 219/CGROUP, seen twice in CI: a host without its Pi model): retry it.
# A drop-in here, not in the golden rootfs's unit, so that the cached rootfs stays valid.
install -d "$root/etc/systemd/system/armlab-lab-identity.service.d"
printf '[Service]\nRestart=on-failure\nRestartSec=1\n' > "$root/etc/systemd/system/armlab-lab-identity.service.d/retry.conf"

binds=(
  "--bind=$dir/rancher:/var/lib/rancher"
  "--bind=$dir/containerd:/var/lib/containerd"
  "--bind-ro=/usr/bin/containerd:$ARMLAB_LAB_BIN/containerd"
  "--bind-ro=/usr/bin/ctr:$ARMLAB_LAB_BIN/ctr"
  "--bind-ro=/usr/bin/jq:$ARMLAB_LAB_BIN/jq"
)
# armhf roots get this machine's amd64 libc for the lab's containerd (multiarch paths do not collide).
[ "$ARMLAB_USERLAND" = armhf ] && binds+=("--bind-ro=/usr/lib/x86_64-linux-gnu")

while :; do
  rc=0
  systemd-nspawn --boot --keep-unit --register=no --console=read-only \
    --machine="$ARMLAB_MACHINE" --network-namespace-path="/run/netns/$ARMLAB_NETNS" \
    --directory="$root" "${binds[@]}" &
  echo $! > "$dir/nspawn.pid"
  wait $! || rc=$?
  rm -f "$dir/nspawn.pid"
  # 133: the host asked to reboot. Anything else: powered off or killed.
  [ "$rc" -eq 133 ] || exit "$rc"
  echo "armlab: $ARMLAB_HOSTNAME rebooting"
done
