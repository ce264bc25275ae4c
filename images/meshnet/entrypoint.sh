#!/bin/sh
# Runs in the meshnetd DaemonSet pod on every node: installs the meshnet CNI
# plugin into the node's CNI bin folder, puts meshnet in front of the node's own
# CNI config (flannel on k3s) as 00-meshnet.conflist, then runs meshnetd.
# CNI_BIN_DIR and CNI_CONF_DIR are where the manifest mounts k3s's host folders.
set -eu
bin_dir=${CNI_BIN_DIR:-/opt/cni/bin}
conf_dir=${CNI_CONF_DIR:-/etc/cni/net.d}

# Copy then rename: kubelet may exec the plugin at any moment.
cp /meshnet "$bin_dir/.meshnet.new"
mv -f "$bin_dir/.meshnet.new" "$bin_dir/meshnet"

delegate=""
for f in $(ls "$conf_dir" 2>/dev/null | sort); do
  case "$f" in
    00-meshnet.conflist) ;;
    *.conflist|*.conf) delegate="$conf_dir/$f"; break ;;
  esac
done
if [ -z "$delegate" ]; then
  echo "meshnet: no CNI config in $conf_dir to delegate to (is flannel running?)" >&2
  exit 1
fi
jq '{cniVersion: (.cniVersion // "0.3.1"), name: "meshnet",
     plugins: [{type: "meshnet", name: "meshnet", ipam: {}, dns: {},
                delegate: (if .plugins then .plugins[0] else . end)}]}' "$delegate" > "$conf_dir/.00-meshnet.conflist.new"
mv -f "$conf_dir/.00-meshnet.conflist.new" "$conf_dir/00-meshnet.conflist"
echo "meshnet: installed $bin_dir/meshnet; $conf_dir/00-meshnet.conflist delegates to $(basename "$delegate")"

if [ "${1:-}" = "--install-only" ]; then exit 0; fi
exec /meshnetd "$@"
