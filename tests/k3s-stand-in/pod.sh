# Part of the k3s STAND-IN (inlined into the served k3s script by tasks/lab/stand-in-release.ts).
# The stand-in kubelet's pod set-up (kubelet.sh runs it): the image's ref as kubelet
# normalizes it, the image config for the node's platform, and the pod's argv, env,
# mounts and workdir from the manifest over the image config, as Kubernetes merges
# them; then the process, chrooted in its own mount and PID namespaces. Its upstream
# is kubelet's behaviour in general, as kubelet.sh's header says.

# docker.io/library/x:latest, as kubelet and containerd name a short ref.
normalize_ref() {
  local ref=$1 first=${1%%/*}
  case "$ref" in */*) ;; *) ref="library/$ref" ;; esac
  case "$first" in *.*|*:*|localhost) [ "$first" != "$1" ] || ref="docker.io/$ref" ;; *) ref="docker.io/$ref" ;; esac
  case "${ref##*/}" in *:*|*@*) ;; *) ref="$ref:latest" ;; esac
  printf '%s' "$ref"
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

# Write the pod's argv, env, mounts and workdir files from its spec (loaded in SPEC) and
# image; on a problem print "REASON<TAB>message" and fail.
pod_prepare() {
  local d=$1 spec=$2 pod=$3 ns=$4 ref=$5 c=spec.template.spec.containers.0 config
  if ! config=$(image_config "$ref"); then printf 'CreateContainerError\tno config for %s in image %s' "$PLATFORM" "$ref"; return 1; fi
  # Kubernetes: command replaces the entrypoint and drops the image's cmd; args replace cmd.
  local -a argv=() cmd=() args=()
  local n=0
  while [ -n "${SPEC[$c.command.$n]+set}" ]; do cmd+=("${SPEC[$c.command.$n]}"); n=$((n + 1)); done
  n=0
  while [ -n "${SPEC[$c.args.$n]+set}" ]; do args+=("${SPEC[$c.args.$n]}"); n=$((n + 1)); done
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
    while name=${SPEC[$c.env.$i.name]:-} && [ -n "$name" ]; do
      value=${SPEC[$c.env.$i.value]:-}
      field=${SPEC[$c.env.$i.valueFrom.fieldRef.fieldPath]:-}
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
  while mpath=${SPEC[$c.volumeMounts.$i.mountPath]:-} && [ -n "$mpath" ]; do
    vname=${SPEC[$c.volumeMounts.$i.name]:-}
    host='' j=0
    while vn=${SPEC[spec.template.spec.volumes.$j.name]:-} && [ -n "$vn" ]; do
      [ "$vn" = "$vname" ] && host=${SPEC[spec.template.spec.volumes.$j.hostPath.path]:-} && break
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
  exec env -i "${env[@]}" unshare --root="$r" --wd="$(<"$d/workdir")" -- "${argv[@]}"
}
