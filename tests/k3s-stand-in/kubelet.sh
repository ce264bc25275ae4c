# Part of the k3s STAND-IN (inlined into the served k3s script by tests/helpers/k3s-mirror.ts).
# The stand-in KUBELET: not a kubelet, but enough of one that a DaemonSet or
# Deployment written to the auto-deploy folder really runs from the image
# side-loaded into this node's containerd, so a rollout can succeed or fail for
# real reasons. What it does, every few seconds, on every node:
#   - reads the workloads (server: its manifests folder; agent: from the server);
#   - runs a DaemonSet's pod when the node's arch matches its nodeSelector, and
#     a Deployment's single pod on the server only (the stand-in's "scheduler");
#   - image: the manifest's ref, normalized like kubelet (docker.io/…), must be
#     in containerd's k8s.io namespace for this node's platform: there is no
#     registry, so a missing image is ErrImagePull whatever the pull policy;
#   - runs the first container: `ctr images mount` of the image, hostPath
#     volumes bound in, entrypoint/cmd/env from the image config overridden by
#     command/args/env of the manifest, in its own mount and PID namespaces,
#     chrooted (`unshare --root`). It shares the node's network (hostNetwork or
#     not) and gets no cgroup limits: runc cannot run inside the lab's nspawn hosts;
#   - a pod is Running once its command was exec'd (never while the stand-in sets it
#     up), ready once that has run for 3 s; a process that ends is restarted
#     with a back-off (10 s doubling, at most 40 s) and counted in RESTARTS;
#   - a changed workload replaces its pod; a removed one stops it;
#   - reports each pod's status and log tail to the server (kubectl reads those).
# What it imitates is kubelet's behaviour in general, not one upstream file at one
# commit: the back-off of kubernetes' pkg/kubelet/kubelet.go (backOffPeriod 10 s,
# doubling; upstream caps it at MaxContainerBackOff, 300 s, where this stand-in
# stops at 40 s so that tests do not wait) and the short-name normalization of
# distribution/reference (docker.io/, library/, :latest). It is not faithful to
# what armlab does not rely on: networking, cgroups, probes, more than one container.
KUBELET_RUN=/run/armlab-stand-in-kubelet

kubelet_platform() {
  case "$ARCH" in arm) echo linux/arm/v7 ;; arm64) echo linux/arm64 ;; *) echo "linux/$ARCH" ;; esac
}

# docker.io/library/x:latest, as kubelet and containerd name a short ref.
normalize_ref() {
  local ref=$1 first=${1%%/*}
  case "$ref" in */*) ;; *) ref="library/$ref" ;; esac
  case "$first" in *.*|*:*|localhost) [ "$first" != "$1" ] || ref="docker.io/$ref" ;; *) ref="docker.io/$ref" ;; esac
  case "${ref##*/}" in *:*|*@*) ;; *) ref="$ref:latest" ;; esac
  printf '%s' "$ref"
}

kctr() { CONTAINERD_ADDRESS=/run/k3s/containerd/containerd.sock "$CTR" -n k8s.io "$@"; }

pod_alive() { local pid; pid=$(cat "$1/pid" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && ! grep -q '^[^)]*) Z' "/proc/$pid/stat" 2>/dev/null; }

pod_stop() {
  local d=$1 pid i
  pid=$(cat "$d/pid" 2>/dev/null || true)
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in 1 2 3 4 5 6 7 8 9 10; do pod_alive "$d" || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$d/pid"
  if mountpoint -q "$d/rootfs" 2>/dev/null; then kctr images unmount --rm "$d/rootfs" >/dev/null 2>&1 || umount -l "$d/rootfs"; fi
}

# The image config's JSON for this node's platform (the ref's target may be an index).
image_config() {
  local ref=$1 target manifest digest
  target=$(kctr images ls "name==$ref" | awk 'NR == 2 { print $3 }')
  [ -n "$target" ] || return 1
  manifest=$(kctr content get "$target") || return 1
  if printf '%s' "$manifest" | "$JQ" -e '.manifests' >/dev/null 2>&1; then
    local arch=${PLATFORM#linux/} variant=''
    case "$arch" in */*) variant=${arch#*/}; arch=${arch%%/*} ;; esac
    digest=$(printf '%s' "$manifest" | "$JQ" -r --arg a "$arch" --arg v "$variant" \
      '[.manifests[] | select(.platform.architecture == $a and ($v == "" or .platform.variant == $v))][0].digest // empty')
    [ -n "$digest" ] || return 1
    manifest=$(kctr content get "$digest") || return 1
  fi
  kctr content get "$(printf '%s' "$manifest" | "$JQ" -r '.config.digest')"
}

# Write the pod's argv, env, mounts and workdir files from its spec and image; on a
# problem print "REASON<TAB>message" and fail.
pod_prepare() {
  local d=$1 spec=$2 pod=$3 ns=$4 ref=$5 c=spec.template.spec.containers.0 config
  if ! config=$(image_config "$ref"); then printf 'CreateContainerError\tno config for %s in image %s' "$PLATFORM" "$ref"; return 1; fi
  # Kubernetes: command replaces the entrypoint and drops the image's cmd; args replace cmd.
  local -a argv=() cmd=() args=()
  mapfile -t cmd < <(awk -F'\t' -v p="$c.command." 'index($1, p) == 1 { print $2 }' "$spec")
  mapfile -t args < <(awk -F'\t' -v p="$c.args." 'index($1, p) == 1 { print $2 }' "$spec")
  if [ "${#cmd[@]}" -gt 0 ]; then argv=("${cmd[@]}")
  else mapfile -d '' argv < <(printf '%s' "$config" | "$JQ" -j '(.config.Entrypoint // [])[] + "\u0000"'); fi
  if [ "${#args[@]}" -gt 0 ]; then argv+=("${args[@]}")
  elif [ "${#cmd[@]}" -eq 0 ]; then mapfile -d '' -O "${#argv[@]}" argv < <(printf '%s' "$config" | "$JQ" -j '(.config.Cmd // [])[] + "\u0000"'); fi
  if [ "${#argv[@]}" -eq 0 ]; then printf 'CreateContainerError\tno command specified (image %s has no entrypoint or cmd)' "$ref"; return 1; fi
  printf '%s\0' "${argv[@]}" > "$d/argv"
  printf '%s' "$config" | "$JQ" -r '.config.WorkingDir // "/" | if . == "" then "/" else . end' > "$d/workdir"
  # Env: the image's, then the manifest's (literal values and the fieldRefs kubelet fills in).
  {
    printf '%s' "$config" | "$JQ" -j '(.config.Env // [])[] + "\u0000"'
    local i=0 name value field
    while name=$(spec_get "$spec" "$c.env.$i.name") && [ -n "$name" ]; do
      value=$(spec_get "$spec" "$c.env.$i.value")
      field=$(spec_get "$spec" "$c.env.$i.valueFrom.fieldRef.fieldPath")
      case "$field" in
        '') ;; spec.nodeName) value=$NODE ;; status.hostIP) value=$NODE_IP ;; metadata.name) value=$pod ;; metadata.namespace) value=$ns ;;
        *) printf 'CreateContainerConfigError\tstand-in k3s cannot fill env %s from %s' "$name" "$field" >&3; return 1 ;;
      esac
      printf '%s=%s\0' "$name" "$value"
      i=$((i + 1))
    done
  } 3>&1 > "$d/env" || return 1
  # hostPath volumes only.
  : > "$d/mounts"
  local i=0 mpath vname j vn host
  while mpath=$(spec_get "$spec" "$c.volumeMounts.$i.mountPath") && [ -n "$mpath" ]; do
    vname=$(spec_get "$spec" "$c.volumeMounts.$i.name")
    host='' j=0
    while vn=$(spec_get "$spec" "spec.template.spec.volumes.$j.name") && [ -n "$vn" ]; do
      [ "$vn" = "$vname" ] && host=$(spec_get "$spec" "spec.template.spec.volumes.$j.hostPath.path") && break
      j=$((j + 1))
    done
    if [ -z "$host" ]; then printf 'CreateContainerConfigError\tvolume %s: stand-in k3s mounts hostPath volumes only' "$vname"; return 1; fi
    printf '%s\t%s\n' "$host" "$mpath" >> "$d/mounts"
    i=$((i + 1))
  done
}

# Runs in the pod's new mount and PID namespaces: bind what the pod sees, then exec its process chrooted.
pod_exec() {
  local d=$1 r=$1/rootfs host path
  mkdir -p "$r/dev" "$r/sys"
  mount --rbind /dev "$r/dev"
  mount --rbind /sys "$r/sys"
  while IFS=$'\t' read -r host path; do
    mkdir -p "$host" "$r$path"
    mount --rbind "$host" "$r$path"
  done < "$d/mounts"
  local -a env argv
  mapfile -d '' env < "$d/env"
  mapfile -d '' argv < "$d/argv"
  exec env -i "${env[@]}" unshare --root="$r" --wd="$(cat "$d/workdir")" -- "${argv[@]}"
}

# Start (or restart) the pod in dir d; prints "REASON<TAB>message" when it cannot.
pod_start() {
  local d=$1 spec=$2 pod=$3 ns=$4 ref
  ref=$(normalize_ref "$(spec_get "$spec" spec.template.spec.containers.0.image)")
  if ! kctr images ls -q "name==$ref" | grep -qxF "$ref"; then
    printf 'ErrImagePull\timage %s is not in containerd (k8s.io) and the stand-in has no registry to pull from' "$ref"
    return 1
  fi
  # The image is there now: an image problem is over (kubelet's waiting reason becomes
  # ContainerCreating), unlike a crash, which stays the last state until the pod is ready.
  case "$(cut -f1 "$d/reason" 2>/dev/null)" in ErrImagePull|ImagePullBackOff) rm -f "$d/reason" ;; esac
  mkdir -p "$d/rootfs"
  mountpoint -q "$d/rootfs" || kctr images mount --rw --platform "$PLATFORM" "$ref" "$d/rootfs" > "$d/mount.out" 2>&1 || {
    printf 'CreateContainerError\t%s' "$(tail -n1 "$d/mount.out")"; return 1; }
  pod_prepare "$d" "$spec" "$pod" "$ns" "$ref" || return 1
  mkdir -p "$d/rootfs/proc"
  printf '=== %s started\n' "$(date -u +%FT%TZ)" >> "$d/log"
  # --kill-child: the pod's PID namespace dies with the unshare kubelet holds.
  setsid unshare --mount --pid --fork --kill-child --mount-proc="$d/rootfs/proc" \
    "$SELF" stand-in-pod-exec "$d" >> "$d/log" 2>&1 < /dev/null &
  echo $! > "$d/pid"
  rm -f "$d/execd"
}

# True once the pod's process has exec'd the container's command: kubelet calls a
# container Running only after runc's execve succeeded, so a command that cannot be
# executed never shows Running, however slow the set-up before it is (bash under
# qemu on a loaded machine takes seconds). Pid 1 of the pod's PID namespace runs the
# stand-in's own set-up (the k3s script, env, unshare) until then; under binfmt its
# comm is the program's name. Records when it was first seen.
pod_execd() {
  local d=$1 outer child comm
  [ -s "$d/execd" ] && return 0
  outer=$(cat "$d/pid" 2>/dev/null) || return 1
  # The file is "PID " with no newline (read would fail on it).
  child=$(cat "/proc/$outer/task/$outer/children" 2>/dev/null) || return 1
  child=${child%% *}
  [ -n "$child" ] || return 1
  comm=$(cat "/proc/$child/comm" 2>/dev/null) || return 1
  case "$comm" in k3s|env|unshare) return 1 ;; esac
  date +%s > "$d/execd"
}

# One pass over the workloads this node should run.
kubelet_sync() {
  local specs=$KUBELET_RUN/specs text
  if [ "$ROLE" = server ]; then text=$(manifests_text)
  else text=$(http_post "$SERVER_URL" /cgi-bin/manifests "token=$TOKEN") || return 0; fi
  printf '%s\n' "$text" | flatten_yaml | workload_specs "$specs"
  local spec want=' '
  for spec in "$specs"/*.spec; do
    [ -f "$spec" ] || continue
    local kind name ns selector pod d hash
    kind=$(spec_get "$spec" kind); name=$(spec_get "$spec" metadata.name); ns=$(spec_get "$spec" metadata.namespace)
    ns=${ns:-default}
    selector=$(spec_get "$spec" 'spec.template.spec.nodeSelector.kubernetes.io/arch')
    [ -z "$selector" ] || [ "$selector" = "$ARCH" ] || continue
    [ "$kind" = DaemonSet ] || [ "$ROLE" = server ] || continue
    pod="$name-$NODE"
    want="$want${ns}_$pod "
    d=$KUBELET_RUN/pods/${ns}_$pod
    hash=$(sha256sum "$spec" | cut -c1-16)
    mkdir -p "$d"
    if [ "$(cat "$d/hash" 2>/dev/null)" != "$hash" ]; then
      pod_stop "$d"
      rm -f "$d/restarts" "$d/next" "$d/reason" "$d/log"
      printf '%s\n' "$hash" > "$d/hash"
      printf '%s/%s\n' "$kind" "$name" > "$d/owner"
    fi
    if ! pod_alive "$d"; then
      local now next
      now=$(date +%s); next=$(cat "$d/next" 2>/dev/null || echo 0)
      if [ -f "$d/pid" ]; then
        # It ran and ended: back off before the restart, as kubelet does.
        rm -f "$d/pid"
        local n; n=$(( $(cat "$d/restarts" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$d/restarts"
        local backoff=$(( 10 << (n > 3 ? 2 : n - 1) ))
        next=$(( now + backoff )); echo "$next" > "$d/next"
        printf 'CrashLoopBackOff\tback-off %ss restarting failed container of pod %s/%s (%s)\n' "$backoff" "$ns" "$pod" "$(tail -n1 "$d/log" 2>/dev/null)" > "$d/reason"
      fi
      if [ "$now" -ge "$next" ]; then
        local why
        # A started pod keeps its last problem until it is ready (report_pod), as kubelet's last state does.
        why=$(pod_start "$d" "$spec" "$pod" "$ns") || printf '%s\n' "$why" > "$d/reason"
      fi
    fi
    report_pod "$d" "$ns" "$pod"
  done
  # Pods whose workload is gone or no longer for this node.
  local d
  for d in "$KUBELET_RUN"/pods/*; do
    [ -d "$d" ] || continue
    case "$want" in *" ${d##*/} "*) continue ;; esac
    pod_stop "$d"
    report_gone "${d##*/}"
    rm -rf "$d"
  done
}

report_pod() {
  local d=$1 ns=$2 pod=$3 phase=Pending ready=false reason='' message='' log
  # Running once its command was exec'd; ready once that has kept running for 3 s.
  # Before that it is Pending and keeps its last reason (ContainerCreating if none).
  if pod_alive "$d" && pod_execd "$d"; then
    phase=Running
    [ $(( $(date +%s) - $(cat "$d/execd") )) -lt 3 ] || { ready=true; rm -f "$d/reason"; }
  fi
  if [ -s "$d/reason" ]; then IFS=$'\t' read -r reason message < "$d/reason"; fi
  log=$(tail -n 40 "$d/log" 2>/dev/null | base64 -w0 | tr '+/=' '-_.')
  local body="namespace=$ns&name=$pod&node=$NODE&owner=$(cat "$d/owner")&hash=$(cat "$d/hash")&phase=$phase&ready=$ready"
  body="$body&restarts=$(cat "$d/restarts" 2>/dev/null || echo 0)&reason=$reason&message=$(printf '%s' "$message" | base64 -w0 | tr '+/=' '-_.')&log=$log"
  send_pod_status "$body"
}

report_gone() { send_pod_status "namespace=${1%%_*}&name=${1#*_}&node=$NODE&phase=Gone"; }

# The server stores its own pods' status; agents post theirs to it.
send_pod_status() {
  if [ "$ROLE" = server ]; then printf '%s' "$1" | store_pod_status
  else http_post "$SERVER_URL" /cgi-bin/podstatus "token=$TOKEN&$1" >/dev/null || true; fi
}

# Runs beside k3s server/agent; ends when that process does (KillMode=process keeps it otherwise).
kubelet_loop() {
  local parent=$1
  PLATFORM=$(kubelet_platform)
  NODE_IP=$(ip -4 -o addr show scope global | awk '{ sub(/\/.*/, "", $4); print $4; exit }')
  mkdir -p "$KUBELET_RUN/pods"
  while kill -0 "$parent" 2>/dev/null; do
    kubelet_sync 2>> "$KUBELET_RUN/kubelet.log" || true
    sleep 2
  done
}

# k3s-killall.sh: stop every stand-in pod.
kubelet_kill_all() {
  local d
  for d in "$KUBELET_RUN"/pods/*; do [ -d "$d" ] && pod_stop "$d"; done
  rm -rf "$KUBELET_RUN"
}
