# Part of the k3s STAND-IN (inlined into the served k3s script by tasks/lab/stand-in-release.ts).
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
#   - a changed workload replaces its pod, which exists (Pending, of the new
#     spec) from the pass that sees the change on: kubernetes' DaemonSet
#     controller (pkg/controller/daemon/daemon_controller.go, updateDaemonSetStatus,
#     read at d826f92a2f903298ea56d9a893395deaba71c89e) counts a pod of the new
#     template hash in updatedNumberScheduled whether or not a kubelet has started
#     it; a removed workload stops its pod;
#   - reports each pod's status and log tail to the server (kubectl reads those)
#     when it changed, and every 10 s while it does not (a heartbeat: kubectl counts
#     a pod ready only while its reports are fresh, kubectl.sh).
# What it imitates is kubelet's behaviour in general, not one upstream file at one
# commit: the back-off of kubernetes' pkg/kubelet/kubelet.go (backOffPeriod 10 s,
# doubling; upstream caps it at MaxContainerBackOff, 300 s, where this stand-in
# stops at 40 s so that tests do not wait) and the short-name normalization of
# distribution/reference (docker.io/, library/, :latest). It is not faithful to
# what armlab does not rely on: networking, cgroups, probes, more than one container.
KUBELET_RUN=/run/armlab-stand-in-kubelet
# How a pod's process is set up from its spec and image: pod.sh.

kubelet_platform() {
  case "$ARCH" in arm) echo linux/arm/v7 ;; arm64) echo linux/arm64 ;; *) echo "linux/$ARCH" ;; esac
}

kctr() { CONTAINERD_ADDRESS=/run/k3s/containerd/containerd.sock "$CTR" -n k8s.io "$@"; }

# Bash builtins only on the kubelet's hot path: every program it starts costs tens of
# milliseconds under qemu, and a pass of many of them took 10 to 40 s on a loaded CI
# machine (a rollout then looked stuck where real pods start in seconds).
pod_alive() {
  local pid stat
  [ -f "$1/pid" ] && pid=$(<"$1/pid") && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # Not a zombie: the state follows the last ')' of /proc/PID/stat (comm may hold one).
  { read -r stat < "/proc/$pid/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  [ "${stat:0:1}" != Z ]
}

pod_stop() {
  local d=$1 pid i
  pid=''
  [ -f "$d/pid" ] && pid=$(<"$d/pid")
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in 1 2 3 4 5 6 7 8 9 10; do pod_alive "$d" || break; nap 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$d/pid"
  if mountpoint -q "$d/rootfs" 2>/dev/null; then kctr images unmount --rm "$d/rootfs" >/dev/null 2>&1 || umount -l "$d/rootfs"; fi
}

# Start (or restart) the pod in dir d; prints "REASON<TAB>message" when it cannot.
pod_start() {
  local d=$1 spec=$2 pod=$3 ns=$4 ref
  [ -n "${NAP_FD:-}" ] || nap 0 # its pipe, kept from the pod below
  spec_load "$spec"
  ref=$(normalize_ref "${SPEC[spec.template.spec.containers.0.image]:-}")
  if ! kctr images ls -q "name==$ref" | grep -qxF "$ref"; then
    printf 'ErrImagePull\timage %s is not in containerd (k8s.io) and the stand-in has no registry to pull from' "$ref"
    return 1
  fi
  # The image is there now: an image problem is over (kubelet's waiting reason becomes
  # ContainerCreating), unlike a crash, which stays the last state until the pod is ready.
  local last=''
  [ -f "$d/reason" ] && IFS=$'\t' read -r last _ < "$d/reason"
  case "$last" in ErrImagePull|ImagePullBackOff) rm -f "$d/reason" ;; esac
  mkdir -p "$d/rootfs"
  mountpoint -q "$d/rootfs" || kctr images mount --rw --platform "$PLATFORM" "$ref" "$d/rootfs" > "$d/mount.out" 2>&1 || {
    printf 'CreateContainerError\t%s' "$(tail -n1 "$d/mount.out")"; return 1; }
  pod_prepare "$d" "$spec" "$pod" "$ns" "$ref" || return 1
  mkdir -p "$d/rootfs/proc"
  TZ=UTC printf '=== %(%Y-%m-%dT%H:%M:%SZ)T started\n' -1 >> "$d/log"
  # --kill-child: the pod's PID namespace dies with the unshare kubelet holds.
  setsid unshare --mount --pid --fork --kill-child --mount-proc="$d/rootfs/proc" \
    "$SELF" stand-in-pod-exec "$d" >> "$d/log" 2>&1 < /dev/null 9<&- {NAP_FD}<&- &
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
  [ -f "$d/pid" ] && outer=$(<"$d/pid") || return 1
  # The file is "PID " with no newline (read would fail on it).
  [ -r "/proc/$outer/task/$outer/children" ] && child=$(<"/proc/$outer/task/$outer/children") || return 1
  child=${child%% *}
  [ -n "$child" ] || return 1
  { read -r comm < "/proc/$child/comm"; } 2>/dev/null || return 1
  case "$comm" in k3s|env|unshare) return 1 ;; esac
  echo "$EPOCHSECONDS" > "$d/execd"
}

# The workloads of the last pass, kept in the kubelet's own long-lived shell: the
# manifests are read every pass but parsed only when they changed.
KUBELET_TEXT='' KUBELET_WORKLOADS=''
declare -A SENT_BODY=() SENT_AT=() MESSAGE_RAW=() MESSAGE_B64=()

# Parse the workloads: one line each of spec file, kind, name, namespace, arch selector and
# hash, separated by US (\x1f): not a tab, which read would fold when a field is empty.
kubelet_parse() {
  local specs=$1 spec kind name ns selector hash
  printf '%s\n' "$2" | flatten_yaml | workload_specs "$specs"
  KUBELET_WORKLOADS=''
  for spec in "$specs"/*.spec; do
    [ -f "$spec" ] || continue
    spec_load "$spec"
    kind=${SPEC[kind]:-} name=${SPEC[metadata.name]:-} ns=${SPEC[metadata.namespace]:-}
    selector=${SPEC[spec.template.spec.nodeSelector.kubernetes.io/arch]:-}
    hash=$(sha256sum "$spec"); hash=${hash:0:16}
    KUBELET_WORKLOADS+="$spec"$'\x1f'"$kind"$'\x1f'"$name"$'\x1f'"${ns:-default}"$'\x1f'"$selector"$'\x1f'"$hash"$'\n'
  done
}

# One pass over the workloads this node should run.
kubelet_sync() {
  local specs=$KUBELET_RUN/specs text
  if [ "$ROLE" = server ]; then text=$(manifests_text)
  else text=$(http_post "$SERVER_URL" /cgi-bin/manifests "token=$TOKEN") || return 0; fi
  if [ "$text" != "$KUBELET_TEXT" ] || [ ! -d "$specs" ]; then
    kubelet_parse "$specs" "$text"
    KUBELET_TEXT=$text
  fi
  local spec kind name ns selector hash want=' ' pod d
  # Fed on fd 9: what the loop runs must not read the workload list from stdin (pods do not inherit it).
  while IFS=$'\x1f' read -r -u 9 spec kind name ns selector hash; do
    [ -n "$spec" ] || continue
    [ -z "$selector" ] || [ "$selector" = "$ARCH" ] || continue
    [ "$kind" = DaemonSet ] || [ "$ROLE" = server ] || continue
    pod="$name-$NODE"
    want="$want${ns}_$pod "
    d=$KUBELET_RUN/pods/${ns}_$pod
    [ -d "$d" ] || mkdir -p "$d"
    local had=''
    [ -f "$d/hash" ] && had=$(<"$d/hash")
    if [ "$had" != "$hash" ]; then
      # The controller's part: the new pod exists (Pending) as soon as the workload changed,
      # before this kubelet has stopped the old one and set up the new one.
      report_new_pod "$ns" "$pod" "$kind/$name" "$hash"
      pod_stop "$d"
      rm -f "$d/restarts" "$d/next" "$d/reason" "$d/log" "$d/log.b64"
      # Written only once the old process is gone: a kubelet cut short before then stops it next time.
      printf '%s/%s\n' "$kind" "$name" > "$d/owner"
      printf '%s\n' "$hash" > "$d/hash"
    fi
    if ! pod_alive "$d"; then
      local now=$EPOCHSECONDS next=0
      [ -f "$d/next" ] && next=$(<"$d/next")
      if [ -f "$d/pid" ]; then
        # It ran and ended: back off before the restart, as kubelet does.
        rm -f "$d/pid"
        local n=0; [ -f "$d/restarts" ] && n=$(<"$d/restarts"); n=$((n + 1)); echo "$n" > "$d/restarts"
        local backoff=$(( 10 << (n > 3 ? 2 : n - 1) )) lastlog=''
        next=$(( now + backoff )); echo "$next" > "$d/next"
        [ -f "$d/log" ] && lastlog=$(tail -n1 "$d/log")
        printf 'CrashLoopBackOff\tback-off %ss restarting failed container of pod %s/%s (%s)\n' "$backoff" "$ns" "$pod" "$lastlog" > "$d/reason"
      fi
      if [ "$now" -ge "$next" ]; then
        local why
        # A started pod keeps its last problem until it is ready (report_pod), as kubelet's last state does.
        why=$(pod_start "$d" "$spec" "$pod" "$ns") || printf '%s\n' "$why" > "$d/reason"
      fi
    fi
    report_pod "$d" "$ns" "$pod"
  done 9<<< "$KUBELET_WORKLOADS"
  # Pods whose workload is gone or no longer for this node.
  for d in "$KUBELET_RUN"/pods/*; do
    [ -d "$d" ] || continue
    case "$want" in *" ${d##*/} "*) continue ;; esac
    pod_stop "$d"
    report_gone "${d##*/}"
    rm -rf "$d"
  done
}

# A pod's status as the kubelet reports it, into POD_BODY: namespace, name, owner, hash,
# phase, ready, restarts, reason, message and log (the last two encoded). Into a variable,
# not printed: a command substitution forks the kubelet, on its hot path, under qemu.
pod_status_body() {
  printf -v POD_BODY 'namespace=%s&name=%s&node=%s&owner=%s&hash=%s&phase=%s&ready=%s&restarts=%s&reason=%s&message=%s&log=%s' \
    "$1" "$2" "$NODE" "$3" "$4" "$5" "$6" "$7" "$8" "$9" "${10}"
}

# Send a pod's status when it changed, and at least every POD_FRESH_SECONDS / 4 (kubectl
# counts a pod ready only while its reports are fresh; a pass may take seconds).
send_when_changed() {
  local key=$1 body=$2
  if [ "${SENT_BODY[$key]:-}" = "$body" ] && [ $(( EPOCHSECONDS - ${SENT_AT[$key]:-0} )) -lt $(( POD_FRESH_SECONDS / 4 )) ]; then return 0; fi
  send_pod_status "$body" && SENT_BODY[$key]=$body && SENT_AT[$key]=$EPOCHSECONDS
}

# A pod just created from a changed workload: Pending, of the new spec, no process yet.
report_new_pod() {
  pod_status_body "$1" "$2" "$3" "$4" Pending false 0 '' '' ''
  send_when_changed "${1}_$2" "$POD_BODY"
}

report_pod() {
  local d=$1 ns=$2 pod=$3 phase=Pending ready=false reason='' message='' log='' execd
  # Running once its command was exec'd; ready once that has kept running for 3 s.
  # Before that it is Pending and keeps its last reason (ContainerCreating if none).
  if pod_alive "$d" && pod_execd "$d"; then
    phase=Running
    execd=$(<"$d/execd")
    [ $(( EPOCHSECONDS - execd )) -lt 3 ] || { ready=true; rm -f "$d/reason"; }
  fi
  if [ -s "$d/reason" ]; then IFS=$'\t' read -r reason message < "$d/reason"; fi
  # The log's tail, encoded again only when the log was written since the last encoding
  # began (the mark is made before tail reads, so that a write during it is not missed).
  if [ -f "$d/log" ]; then
    if [ ! -f "$d/log.b64" ] || [ "$d/log" -nt "$d/log.mark" ]; then
      rm -f "$d/log.mark"; : > "$d/log.mark"
      tail -n 40 "$d/log" | b64url > "$d/log.b64"
    fi
    log=$(<"$d/log.b64")
  fi
  local key=${ns}_$pod
  if [ -n "$message" ]; then
    # A crash-looping pod keeps its message for many passes: encoded once.
    [ "${MESSAGE_RAW[$key]:-}" = "$message" ] || { MESSAGE_RAW[$key]=$message; MESSAGE_B64[$key]=$(printf '%s' "$message" | b64url); }
    message=${MESSAGE_B64[$key]}
  fi
  local restarts=0
  [ -f "$d/restarts" ] && restarts=$(<"$d/restarts")
  pod_status_body "$ns" "$pod" "$(<"$d/owner")" "$(<"$d/hash")" "$phase" "$ready" "$restarts" "$reason" "$message" "$log"
  send_when_changed "$key" "$POD_BODY"
}

report_gone() {
  unset "SENT_BODY[$1]" "SENT_AT[$1]" "MESSAGE_RAW[$1]" "MESSAGE_B64[$1]"
  send_pod_status "namespace=${1%%_*}&name=${1#*_}&node=$NODE&phase=Gone"
}

# The server stores its own pods' status; agents post theirs to it.
send_pod_status() {
  if [ "$ROLE" = server ]; then store_pod_status "$1"
  else http_post "$SERVER_URL" /cgi-bin/podstatus "token=$TOKEN&$1" >/dev/null; fi
}

# Runs beside k3s server/agent; ends when that process does (KillMode=process keeps it otherwise).
kubelet_loop() {
  local parent=$1
  PLATFORM=$(kubelet_platform)
  NODE_IP=$(ip -4 -o addr show scope global | awk '{ sub(/\/.*/, "", $4); print $4; exit }')
  mkdir -p "$KUBELET_RUN/pods"
  nap 0 # opens the pipe it sleeps on, which pod_start keeps from the pods
  while kill -0 "$parent" 2>/dev/null; do
    kubelet_sync 2>> "$KUBELET_RUN/kubelet.log" || true
    nap 2
  done
}

# k3s-killall.sh: stop every stand-in pod.
kubelet_kill_all() {
  local d
  for d in "$KUBELET_RUN"/pods/*; do [ -d "$d" ] && pod_stop "$d"; done
  rm -rf "$KUBELET_RUN"
}
