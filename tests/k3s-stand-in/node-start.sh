# Part of the k3s STAND-IN (inlined into the served k3s script by tasks/lab/stand-in-release.ts).
# What k3s does on every node as it starts: the CNI files by version, and the
# Type=notify readiness signal.
# VERSION is at least $1 (X.Y.Z; the +k3sN suffix does not count).
version_at_least() {
  local v=${VERSION#v} a b
  v=${v%%+*}
  IFS=. read -r -a a <<< "$v"
  IFS=. read -r -a b <<< "$1"
  (( a[0] != b[0] )) && { (( a[0] > b[0] )); return; }
  (( a[1] != b[1] )) && { (( a[1] > b[1] )); return; }
  (( a[2] >= b[2] ))
}

# What k3s's agent writes at start: flannel's CNI config, the CNI bin folder
# and the containerd config naming it, laid out by version as the real k3s does
# (k3s-io/k3s: static data/cni from PR #10868, in v1.32.0 and backported to
# v1.31.2, v1.30.6, v1.29.10, v1.28.15; data/<hash>/bin before, with data/current
# linking to it. containerd 2 and config-v3.toml from v1.31.6 and v1.32.2,
# config.toml (version 2) before; the CNI table as k3s-io/k3s
# pkg/agent/templates/templates_linux.go at 06be48b6 renders it, and as k3s
# issues #11799/#11800 recorded it).
write_cni_files() {
  local conf=$DATA/agent/etc/cni/net.d ctd=$DATA/agent/etc/containerd minor since bin
  mkdir -p "$conf" "$ctd"
  printf '%s\n' '{"name":"cbr0","cniVersion":"1.0.0","plugins":[{"type":"flannel","delegate":{"hairpinMode":true,"forceAddress":true,"isDefaultGateway":true}},{"type":"portmap","capabilities":{"portMappings":true}},{"type":"bandwidth","capabilities":{"bandwidth":true}}]}' > "$conf/10-flannel.conflist"
  minor=$(printf '%s' "$VERSION" | sed -n 's/^v1\.\([0-9]*\)\..*/\1/p')
  case "$minor" in 28) since=1.28.15 ;; 29) since=1.29.10 ;; 30) since=1.30.6 ;; 31) since=1.31.2 ;; *) since=1.32.0 ;; esac
  if version_at_least "$since"; then bin=$DATA/data/cni
  else bin=$DATA/data/5t4nd1n/bin; fi
  mkdir -p "$bin"
  [ "$bin" = "$DATA/data/cni" ] || ln -sfn 5t4nd1n "$DATA/data/current"
  printf '#!/bin/sh\necho "stand-in k3s: $(basename "$0") is not a CNI plugin" >&2\nexit 1\n' > "$bin/flannel"
  chmod 755 "$bin/flannel"
  rm -f "$ctd/config.toml" "$ctd/config-v3.toml"
  if { [ "$minor" = 31 ] && version_at_least 1.31.6; } || version_at_least 1.32.2; then
    printf 'version = 3\n\n[plugins.%s.cni]\n  bin_dir = "%s"\n  conf_dir = "%s"\n' "'io.containerd.cri.v1.runtime'" "$bin" "$conf" > "$ctd/config-v3.toml"
  else
    printf 'version = 2\n\n[plugins.%s.cni]\n  bin_dir = "%s"\n  conf_dir = "%s"\n' '"io.containerd.grpc.v1.cri"' "$bin" "$conf" > "$ctd/config.toml"
  fi
}

# Type=notify: tell systemd this node is ready, as k3s does once its server
# answers or its agent has joined. systemd-notify is a child process, and
# systemd may not attribute a message from a process that already exited to the
# unit: repeat until the unit is no longer activating.
notify_ready() {
  [ -n "${NOTIFY_SOCKET:-}" ] || return 0
  local unit='' line
  while IFS= read -r line; do unit=${line##*/}; done < /proc/self/cgroup
  (
    for _ in $(seq 1 60); do
      systemd-notify --ready 2>/dev/null || true
      [ "$(systemctl show -p ActiveState --value "$unit" 2>/dev/null)" = activating ] || exit 0
      sleep 1
    done
  ) &
}
