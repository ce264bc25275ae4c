#!/bin/sh
# Starts zebra and the routing daemons from the integrated config that k8s-topo
# mounts at /etc/quagga/Quagga.conf, then stays in the foreground with zebra.
set -eu
conf=/etc/quagga/Quagga.conf
[ -f "$conf" ] || : > "$conf"
mkdir -p /run/quagga && chown quagga:quagga /run/quagga
for daemon in ospfd bgpd ripd; do
  if grep -q "^router ${daemon%d}" "$conf"; then /usr/sbin/$daemon -d -f "$conf"; fi
done
exec /usr/sbin/zebra -f "$conf"
