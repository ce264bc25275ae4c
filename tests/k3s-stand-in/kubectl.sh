# Part of the k3s STAND-IN (inlined into the served k3s script by tasks/lab/stand-in-release.ts).
# kubectl's view of workloads and pods: the applied manifests (manifests.sh) for what is wanted,
# the pod status the stand-in kubelets report (server/pods/) for what runs.
PODS=$DATA/server/pods
# As kube-controller-manager's --node-monitor-grace-period, 40 s by default (kubernetes/website
# content/en/docs/reference/controllers/node.md: "40s to start reporting ConditionUnknown"):
# a node silent that long has its pods marked not ready. The kubelets report every 10 s
# while nothing changes.
POD_FRESH_SECONDS=40

# FIELD's value in a form body `k=v&k=v` (the first, if repeated), by parameter expansion:
# a CGI runs this for every report of every pod, each program started costs tens of
# milliseconds under qemu, and bash reads a here-string or pipe one byte per read(2).
form_field() {
  local all="&$2&" rest
  rest=${all#*&"$1"=}
  if [ "$rest" != "$all" ]; then printf '%s' "${rest%%&*}"; fi
}

# A pod's status body `k=v&k=v` (as an argument, or on stdin; the token already checked)
# → server/pods/<ns>_<name>, one k=v per line and no token; phase=Gone removes it.
store_pod_status() {
  local body ns name
  if [ $# -gt 0 ]; then body=$1; else IFS= read -r -d '' body || true; fi
  ns=$(form_field namespace "$body"); name=$(form_field name "$body")
  case "$ns$name" in ''|*/*|.*) echo 'bad pod' >&2; return 1 ;; esac
  [ -d "$PODS" ] || mkdir -p "$PODS"
  if [ "$(form_field phase "$body")" = Gone ]; then rm -f "$PODS/${ns}_$name"; return 0; fi
  local rest=$body part
  while :; do
    part=${rest%%&*}
    case "$part" in token=*) ;; *) printf '%s\n' "$part" ;; esac
    [ "$part" != "$rest" ] || break
    rest=${rest#*&}
  done > "$PODS/.${ns}_$name.tmp"
  # When it was reported (pod_fresh), without a program to read the file's time.
  printf 'at=%s\n' "$EPOCHSECONDS" >> "$PODS/.${ns}_$name.tmp"
  mv -f "$PODS/.${ns}_$name.tmp" "$PODS/${ns}_$name"
}

pod_field() {
  local line
  while IFS= read -r line; do case "$line" in "$2="*) printf '%s\n' "${line#"$2="}"; return 0 ;; esac; done < "$1"
}
# The URL-safe base64 of the stand-in's form bodies (no '+', '/' or '=' to escape), and back.
b64url() { base64 -w0 | tr '+/=' '-_.'; }
unb64() { tr -- '-_.' '+/=' | base64 -d 2>/dev/null; }

# Pods reported in the last POD_FRESH_SECONDS (a silent node's pods are not counted ready).
pod_fresh() {
  local at
  at=$(pod_field "$1" at)
  [ $(( EPOCHSECONDS - ${at:-0} )) -le "$POD_FRESH_SECONDS" ]
}

# Pod files of namespace ns ('any' for all), optionally of one owner Kind/name.
pod_files() {
  local ns=$1 owner=${2:-} f
  for f in "$PODS"/*; do
    [ -f "$f" ] || continue
    [ "$ns" = any ] || [ "$(pod_field "$f" namespace)" = "$ns" ] || continue
    [ -z "$owner" ] || [ "$(pod_field "$f" owner)" = "$owner" ] || continue
    printf '%s\n' "$f"
  done
}

# kubectl get daemonset|deployment NAME -n NS -o json: from the manifest and the reported pods.
kubectl_get_workload() {
  local kind=$1 name=$2 ns=default
  shift 2
  while [ $# -gt 0 ]; do case "$1" in -n|--namespace) ns=$2; shift 2 ;; *) shift ;; esac; done
  local kindName=DaemonSet; [ "$kind" = deployment ] && kindName=Deployment
  # The object as the deploy controller stored it (store_objects), read with builtins.
  local meta=$DATA/server/objects/${ns}_$name.meta got='' hash='' selector='' replicas='' annotations=''
  [ -f "$meta" ] && { read -r got; read -r hash; read -r selector; read -r replicas; read -r annotations; } < "$meta"
  if [ "$got" != "$kindName" ]; then
    echo "Error from server (NotFound): ${kind}s.apps \"$name\" not found" >&2; exit 1
  fi
  local f want=0 ready=0 updated=0
  for f in $(pod_files "$ns" "$kindName/$name"); do
    [ "$(pod_field "$f" hash)" = "$hash" ] || continue
    updated=$((updated + 1))
    [ "$(pod_field "$f" ready)" = true ] && pod_fresh "$f" && ready=$((ready + 1))
  done
  if [ "$kindName" = DaemonSet ]; then
    for f in "$DATA"/server/nodes/*; do
      [ -f "$f" ] || continue
      [ -z "$selector" ] || [ "$(pod_field "$f" arch)" = "$selector" ] && want=$((want + 1))
    done
    printf '{"kind":"DaemonSet","metadata":{"name":"%s","namespace":"%s","generation":1,"annotations":%s},"status":{"observedGeneration":1,"desiredNumberScheduled":%d,"currentNumberScheduled":%d,"numberReady":%d,"updatedNumberScheduled":%d}}\n' "$name" "$ns" "$annotations" "$want" "$updated" "$ready" "$updated"
  else
    want=${replicas:-1}
    printf '{"kind":"Deployment","metadata":{"name":"%s","namespace":"%s","generation":1,"annotations":%s},"spec":{"replicas":%d},"status":{"observedGeneration":1,"replicas":%d,"updatedReplicas":%d,"readyReplicas":%d}}\n' "$name" "$ns" "$annotations" "$want" "$updated" "$updated" "$ready"
  fi
}

# kubectl get pods [-n NS | -A] [-o wide|json]
kubectl_get_pods() {
  local ns=default out=table f first=1
  while [ $# -gt 0 ]; do case "$1" in -n|--namespace) ns=$2; shift 2 ;; -A) ns=any; shift ;; -o) out=$2; shift 2 ;; *) shift ;; esac; done
  local files; files=$(pod_files "$ns")
  if [ "$out" = json ]; then
    printf '{"apiVersion":"v1","kind":"List","items":['
    for f in $files; do
      [ "$first" = 1 ] || printf ','; first=0
      # Shaped like the API's: a problem is a waiting container's reason.
      local phase reason state
      phase=$(pod_field "$f" phase); reason=$(pod_field "$f" reason)
      if [ -n "$reason" ]; then state="{\"waiting\":{\"reason\":\"$reason\"}}"
      elif [ "$phase" = Running ]; then state='{"running":{}}'
      else state='{"waiting":{"reason":"ContainerCreating"}}'; fi
      printf '{"metadata":{"name":"%s","namespace":"%s"},"spec":{"nodeName":"%s"},"status":{"phase":"%s","containerStatuses":[{"ready":%s,"restartCount":%s,"state":%s}]}}' \
        "$(pod_field "$f" name)" "$(pod_field "$f" namespace)" "$(pod_field "$f" node)" "$phase" "$(pod_field "$f" ready)" "$(pod_field "$f" restarts)" "$state"
    done
    printf ']}\n'
    return 0
  fi
  if [ -z "$files" ]; then echo "No resources found in $ns namespace." >&2; return 0; fi
  printf 'NAME\tREADY\tSTATUS\tRESTARTS\tNODE\n'
  for f in $files; do
    local status; status=$(pod_field "$f" reason); status=${status:-$(pod_field "$f" phase)}
    printf '%s\t%s\t%s\t%s\t%s\n' "$(pod_field "$f" name)" "$([ "$(pod_field "$f" ready)" = true ] && echo 1/1 || echo 0/1)" "$status" "$(pod_field "$f" restarts)" "$(pod_field "$f" node)"
  done
}

# kubectl get events -n NS: the stand-in's events are its pods' current problems.
kubectl_get_events() {
  local ns=default f any=0
  while [ $# -gt 0 ]; do case "$1" in -n|--namespace) ns=$2; shift 2 ;; -A) ns=any; shift ;; *) shift ;; esac; done
  for f in $(pod_files "$ns"); do
    local reason; reason=$(pod_field "$f" reason)
    [ -n "$reason" ] || continue
    [ "$any" = 1 ] || printf 'TYPE\tREASON\tOBJECT\tMESSAGE\n'; any=1
    printf 'Warning\t%s\tpod/%s\t%s\n' "$reason" "$(pod_field "$f" name)" "$(pod_field "$f" message | unb64)"
  done
  [ "$any" = 1 ] || echo "No resources found in $ns namespace." >&2
}

# kubectl logs -n NS daemonset/NAME|deployment/NAME|POD [--tail=N]: like kubectl, one pod's log.
kubectl_logs() {
  local ns=default target='' tail=40 f
  while [ $# -gt 0 ]; do case "$1" in -n|--namespace) ns=$2; shift 2 ;; --tail=*) tail=${1#--tail=}; shift ;; -*) shift ;; *) target=$1; shift ;; esac; done
  case "$target" in
    daemonset/*) f=$(pod_files "$ns" "DaemonSet/${target#*/}" | sed -n 1p) ;;
    deployment/*) f=$(pod_files "$ns" "Deployment/${target#*/}" | sed -n 1p) ;;
    *) f=$PODS/${ns}_$target; [ -f "$f" ] || f='' ;;
  esac
  if [ -z "$f" ]; then echo "error: no pod of $target in namespace $ns" >&2; exit 1; fi
  pod_field "$f" log | unb64 | tail -n "$tail"
}
