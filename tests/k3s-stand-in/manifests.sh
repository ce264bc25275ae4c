# Part of the k3s STAND-IN (inlined into the served k3s script by tasks/lab/stand-in-release.ts).
# Reading the auto-deploy manifests, shared by the stand-in kubelet and kubectl.

# Flatten block-style YAML (what armlab renders: js-yaml output, `---` between
# documents) into `DOC<TAB>PATH<TAB>VALUE` lines, PATH like
# spec.template.spec.containers.0.image. Flow collections other than {} and []
# and block scalars are not supported (armlab renders none).
flatten_yaml() {
  awk '
    function pop(ind) { while (depth > 0 && ind_[depth] >= ind) depth-- }
    function path(key,   p, i) { p = ""; for (i = 1; i <= depth; i++) p = p key_[i] "."; return key == "" ? substr(p, 1, length(p) - 1) : p key }
    function unquote(v) {
      if (v ~ /^'"'"'.*'"'"'$/) { v = substr(v, 2, length(v) - 2); gsub(/'"'"''"'"'/, "'"'"'", v) }
      else if (v ~ /^".*"$/) { v = substr(v, 2, length(v) - 2); gsub(/\\"/, "\"", v) }
      return v
    }
    function entry(ind, text,   k, v, c) {
      c = index(text, ": ")
      if (text ~ /:$/ && c == 0) { pop(ind); depth++; ind_[depth] = ind; key_[depth] = substr(text, 1, length(text) - 1); n_[depth] = 0; return }
      if (c == 0) { print doc "\t" path("") "\t" unquote(text); return }
      k = substr(text, 1, c - 1); v = substr(text, c + 2)
      pop(ind); print doc "\t" path(k) "\t" unquote(v)
    }
    BEGIN { doc = 0; depth = 0 }
    /^---/ { doc++; depth = 0; next }
    /^[[:space:]]*(#|$)/ { next }
    {
      match($0, /^ */); ind = RLENGTH; text = substr($0, ind + 1)
      if (text ~ /^- /) {
        # An item of the sequence under the nearest key above this indent.
        pop(ind)
        i = n_[depth]++; depth++; ind_[depth] = ind; key_[depth] = i; n_[depth] = 0
        entry(ind + 2, substr(text, 3))
      } else entry(ind, text)
    }'
}

# k3s's deploy controller, as in k3s-io/k3s pkg/deploy/controller.go (read at
# 0301210fa15fe70ce8427a4b3dfef54b798d17fb): it reads the auto-deploy folder
# when the server starts and then every 15 seconds (time.After(15 *
# time.Second)), and applies each file whose content changed. Until then the
# cluster still has what was applied before: a workload rewritten a moment ago
# still shows its old, fully rolled-out state. A file removed from the folder
# is not deleted from the cluster (only `kubectl delete` does that). Here the
# applied objects are a copy of each file under server/applied.
DEPLOY_PERIOD_SECONDS=15

apply_manifests() {
  local f name APPLIED=$DATA/server/applied
  mkdir -p "$APPLIED"
  for f in "$DATA"/server/manifests/*.yaml; do
    [ -f "$f" ] || continue
    name=${f##*/}
    cmp -s "$f" "$APPLIED/$name" && continue
    # Marked before the change, cleared by store_objects: one cut short is stored next time.
    : > "$DATA/server/.objects-stale"
    cp "$f" "$APPLIED/.$name.tmp" && mv -f "$APPLIED/.$name.tmp" "$APPLIED/$name"
  done
  [ ! -e "$DATA/server/.objects-stale" ] && [ -e "$DATA/server/objects" ] || store_objects
}

# The applied workloads as the API server holds them, parsed once per change rather than
# at every kubectl call (armlab polls a rollout every 2 s, and parsing takes seconds
# under qemu): objects/<ns>_<name>.spec as workload_specs writes it, and .meta beside it
# with kind, spec hash (as the kubelets compute it), arch selector, replicas and
# annotations (JSON), a line each. objects is a link, replaced whole by a rename.
store_objects() {
  # One at a time (a kubectl delete -f during a pass of the controller): each removes the older sets.
  { flock 8; store_objects_locked; } 8> "$DATA/server/.objects.lock"
}

store_objects_locked() {
  local server=$DATA/server dir spec hash annotations old=''
  rm -f "$server/.objects-stale"
  dir=$server/.objects.$EPOCHREALTIME
  [ -L "$server/objects" ] && old=$(readlink "$server/objects")
  manifests_text | flatten_yaml | workload_specs "$dir"
  for spec in "$dir"/*.spec; do
    [ -f "$spec" ] || continue
    spec_load "$spec"
    hash=$(sha256sum "$spec"); hash=${hash:0:16}
    annotations=$(awk -F'\t' 'index($1, "metadata.annotations.") == 1 { print substr($1, 22) "\t" $2 }' "$spec" | "$JQ" -cRn '[inputs | split("\t") | {(.[0]): .[1]}] | add // {}')
    printf '%s\n' "${SPEC[kind]:-}" "$hash" "${SPEC[spec.template.spec.nodeSelector.kubernetes.io/arch]:-}" "${SPEC[spec.replicas]:-}" "$annotations" > "${spec%.spec}.meta"
  done
  ln -sfn "${dir##*/}" "$dir.link"
  mv -T "$dir.link" "$server/objects"
  # The set before the last stays one change longer, for a kubectl still reading it.
  for spec in "$server"/.objects.*; do
    case "${spec##*/}" in "${dir##*/}"|"$old") ;; *) rm -rf "$spec" ;; esac
  done
}

# Runs beside k3s server and ends with it (KillMode=process would keep it through a restart).
deploy_controller_loop() {
  while kill -0 "$1" 2>/dev/null; do
    apply_manifests
    nap "$DEPLOY_PERIOD_SECONDS"
  done
}

# kubectl delete -f FILE: the objects of a manifest (by its file name) are deleted from the cluster.
kubectl_delete_file() {
  local name=${1##*/} APPLIED=$DATA/server/applied
  if [ -f "$APPLIED/$name" ]; then : > "$DATA/server/.objects-stale"; rm -f "$APPLIED/$name"; store_objects; echo "deleted the objects of $name"
  else echo "Error from server (NotFound): nothing applied from $name" >&2; exit 1; fi
}

# The applied manifests as one stream (the cluster's objects, what the kubelets and kubectl read).
manifests_text() {
  local f
  for f in "$DATA"/server/applied/*.yaml; do
    [ -f "$f" ] || continue
    # $(<file), not cat: no program started (see form_field).
    printf -- '---\n%s\n' "$(<"$f")"
  done
}

# Split flattened manifests into one spec file per DaemonSet/Deployment in DIR:
# DIR/<namespace>_<name>.spec with `PATH<TAB>VALUE` lines of the document.
workload_specs() {
  local dir=$1
  rm -rf "$dir"
  mkdir -p "$dir"
  awk -F'\t' -v dir="$dir" '
    { lines[$1] = lines[$1] $2 "\t" $3 "\n" }
    $2 == "kind" { kind[$1] = $3 }
    $2 == "metadata.name" { name[$1] = $3 }
    $2 == "metadata.namespace" { ns[$1] = $3 }
    END {
      for (d in kind) if (kind[d] == "DaemonSet" || kind[d] == "Deployment") {
        f = dir "/" (ns[d] == "" ? "default" : ns[d]) "_" name[d] ".spec"
        printf "%s", lines[d] > f
        close(f)
      }
    }'
}

# A spec file's PATH<TAB>VALUE lines into the associative array SPEC, read as
# ${SPEC[path]:-}: builtins only, where looking up each field with a program would
# start one per field, tens of milliseconds each under qemu.
declare -A SPEC=()
spec_load() {
  local path value
  SPEC=()
  while IFS=$'\t' read -r path value; do SPEC[$path]=$value; done < "$1"
}
