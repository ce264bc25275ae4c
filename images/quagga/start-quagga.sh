#!/bin/sh
# Starts the routing daemons for the integrated config k8s-topo mounts at
# /etc/quagga/Quagga.conf, as Quagga 1.2.4 wants it (lib/vty.c vty_read_config,
# tag quagga-1.2.4): without -f, since a daemon given the integrated file exits
# on its first line that daemon does not know (zebra on "router ospf", ospfd on
# "ip address"); with Quagga.conf present each starts empty, then `vtysh -b`
# hands every daemon its part. Stays in the foreground while they all run.
set -eu
conf=/etc/quagga/Quagga.conf
[ -f "$conf" ] || : > "$conf"
[ -f /etc/quagga/vtysh.conf ] || echo 'service integrated-vtysh-config' > /etc/quagga/vtysh.conf
mkdir -p /run/quagga && chown quagga:quagga /run/quagga
daemons=zebra
for d in ospfd bgpd ripd; do
  if grep -q "^router ${d%d}\( \|$\)" "$conf"; then daemons="$daemons $d"; fi
done
for d in $daemons; do /usr/sbin/$d -d -i /run/quagga/$d.pid; done
# vtysh silently skips a daemon whose vty socket is not there yet: wait, bounded.
for d in $daemons; do
  n=0
  while [ ! -S /run/quagga/$d.vty ]; do
    n=$((n + 1))
    if [ "$n" -gt 300 ]; then echo "start-quagga: $d opened no vty socket in 30 s" >&2; exit 1; fi
    sleep 0.1
  done
done
vtysh -b
echo "start-quagga: $daemons running with $conf"
# PID 1 of the pod: stop the daemons on SIGTERM (PID 1 has no default handler),
# and end when one of them dies, so that kubelet restarts the pod.
stop() { for d in $daemons; do kill "$(cat /run/quagga/$d.pid)" 2>/dev/null || true; done; exit 0; }
trap stop TERM INT
while :; do
  for d in $daemons; do
    kill -0 "$(cat /run/quagga/$d.pid)" 2>/dev/null || { echo "start-quagga: $d exited" >&2; exit 1; }
  done
  sleep 5 &
  wait $!
done
