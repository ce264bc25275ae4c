#!/bin/sh
# Runs in the meshnet DaemonSet pod on every node, as upstream's
# docker/new-entrypoint.sh does (openconfig/kne third_party/meshnet at 577a223f):
# install the CNI plugin, then run meshnetd, whose cni.Init() writes
# 00-meshnet.conflist itself (flannel's plugin list with meshnet appended) into
# its /etc/cni/net.d, which the manifest maps to k3s's CNI conf folder.
set -eu

# Copy then rename: containerd may exec the plugin at any moment.
cp /meshnet /opt/cni/bin/.meshnet.new
mv -f /opt/cni/bin/.meshnet.new /opt/cni/bin/meshnet

# meshnetd writes the link type into k3s's conf folder, but the plugin, run by
# containerd on the host, reads the host's /etc/cni/net.d (mounted at
# /host/etc/cni/net.d): written on every start, so it follows the manifest.
if [ -d /host/etc/cni/net.d ]; then
  printf '%s' "${INTER_NODE_LINK_TYPE:-VXLAN}" > /host/etc/cni/net.d/.meshnet-inter-node-link-type.new
  mv -f /host/etc/cni/net.d/.meshnet-inter-node-link-type.new /host/etc/cni/net.d/meshnet-inter-node-link-type
fi
echo "meshnet: installed /opt/cni/bin/meshnet; link type ${INTER_NODE_LINK_TYPE:-VXLAN}; starting meshnetd"
exec /meshnetd "$@"
