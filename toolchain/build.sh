#!/usr/bin/env bash
# make toolchain: build the real tools from their Go modules, at the versions pinned by the
# wrapper modules beside this script (each one's go.mod/go.sum), into .tools/bin/.
#
# Every wrapper requires one upstream module and repeats its remote `replace` lines (upstream
# go.mod files replace with local paths, which `go install mod@version` refuses). Versions are
# stamped with -ldflags the way the upstream builds do. A tool is rebuilt only when its
# wrapper's go.sum or this script changes; Go's module and build caches make a rebuild cheap.
# What a build produced is also kept in a machine-wide cache (TOOLCHAIN_CACHE_DIR, default
# ~/.cache/redis-keda-platform/toolchain; empty: off), under the same key as the stamp, so a
# fresh checkout of the same pins (every CI run) links nothing: it takes the kept binaries.
#
#   toolchain/build.sh            build every tool that is not up to date
#   toolchain/build.sh NAME...    only these (pulumi pulumi-yaml pulumi-kubernetes kubernetes etcd kwok keda)
#
# Tools the Go module proxy does not serve are listed in toolchain/README.md with the exact
# refusal; this script does not pretend to build them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=${TOOLS_DIR:-$ROOT/.tools}
BIN=$TOOLS/bin
STAMPS=$TOOLS/stamps
SRC=$TOOLS/src
mkdir -p "$BIN" "$STAMPS" "$SRC"
export CGO_ENABLED=0 GOFLAGS=-mod=readonly

command -v go >/dev/null 2>&1 || { echo "error: go not found; install Go >= 1.26 (the toolchain modules need it)" >&2; exit 2; }

ALL=(pulumi pulumi-yaml pulumi-kubernetes kubernetes etcd kwok keda)
SELECTED=("$@")
[[ ${#SELECTED[@]} -gt 0 ]] || SELECTED=("${ALL[@]}")

# version <wrapper> <module>: the version the wrapper's go.mod requires
version() {
  local v
  v=$(awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2 } $1 == "require" && $2 == m { print $3 }' "toolchain/$1/go.mod" | head -n1)
  [[ -n "$v" ]] || { echo "error: toolchain/$1/go.mod does not require $2" >&2; exit 2; }
  echo "$v"
}

fresh() { # fresh <name> <bins...>: the stamp matches and every binary is there
  local name=$1; shift
  [[ "$(cat "$STAMPS/$name" 2>/dev/null)" == "$(key "$name")" ]] || return 1
  local b; for b in "$@"; do [[ -x "$BIN/$b" ]] || return 1; done
}
stamp() { key "$1" >"$STAMPS/$1"; }
key() { cat "toolchain/$1/go.sum" "toolchain/$1/go.mod" toolchain/build.sh | sha256sum | cut -c1-16; }

CACHE=${TOOLCHAIN_CACHE_DIR-${XDG_CACHE_HOME:-$HOME/.cache}/redis-keda-platform/toolchain}

# place <from> <to>: a hard link where the file system allows it (no copy of ~1 GB), else a copy.
place() { ln -f "$1" "$2" 2>/dev/null || cp -f "$1" "$2"; }

from_cache() { # from_cache <name> <bins...>: the same build, kept by an earlier checkout on this machine
  [[ -n "$CACHE" ]] || return 1
  local name=$1 dir b; dir=$CACHE/$1-$(key "$1"); shift
  [[ -f "$dir/complete" ]] || return 1
  for b in "$@"; do rm -f "$BIN/$b"; place "$dir/bin/$b" "$BIN/$b"; done
  if [[ -d "$dir/share/$name" ]]; then
    rm -rf "${TOOLS:?}/share/$name" && mkdir -p "$TOOLS/share" && cp -r "$dir/share/$name" "$TOOLS/share/"
  fi
}

to_cache() { # to_cache <name> <bins...>: keep this build (only the newest one per tool)
  [[ -n "$CACHE" ]] || return 0
  local name=$1 dir b; dir=$CACHE/$1-$(key "$1"); shift
  mkdir -p "$CACHE"
  # older builds of this tool (the key is 16 hex digits: "pulumi-*" would also take pulumi-yaml's)
  local old; for old in "$CACHE/$name"-????????????????{,.tmp}; do [[ -e "$old" ]] && rm -rf "$old"; done
  mkdir -p "$dir.tmp/bin"
  for b in "$@"; do place "$BIN/$b" "$dir.tmp/bin/$b"; done
  if [[ -d "$TOOLS/share/$name" ]]; then mkdir -p "$dir.tmp/share" && cp -r "$TOOLS/share/$name" "$dir.tmp/share/"; fi
  touch "$dir.tmp/complete"
  mv "$dir.tmp" "$dir"
}

build_pulumi() {
  local v; v=$(version pulumi github.com/pulumi/pulumi/pkg/v3)
  (cd toolchain/pulumi && go build -trimpath -o "$BIN/pulumi" \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$v" \
    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
}

build_pulumi-yaml() {
  local v; v=$(version pulumi-yaml github.com/pulumi/pulumi-yaml)
  (cd toolchain/pulumi-yaml && go build -trimpath -o "$BIN/pulumi-language-yaml" \
    -ldflags "-s -w -X github.com/pulumi/pulumi-yaml/pkg/version.Version=$v" \
    github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml)
}

# The provider embeds schema-embed.json and terraform-mapping-embed.json, which its release
# build generates (cmd/pulumi-resource-kubernetes/generate.go) and the module does not hold:
# copy the verified module out of the cache, generate them with the upstream generator, and
# build against that copy.
build_pulumi-kubernetes() {
  local mod=github.com/pulumi/pulumi-kubernetes/provider/v4 pv v dir copy work
  pv=$(version pulumi-kubernetes $mod)
  # The release the provider commit is tagged with: the version its sdk replace names.
  v=$(awk '$1 == "replace" && $2 == "github.com/pulumi/pulumi-kubernetes/sdk/v4" { print $5 }' toolchain/pulumi-kubernetes/go.mod)
  [[ -n "$v" ]] || { echo "error: toolchain/pulumi-kubernetes/go.mod has no sdk/v4 replace" >&2; exit 2; }
  v=${v#v}
  dir=$(cd toolchain/pulumi-kubernetes && go mod download -json "$mod@$pv" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  copy=$SRC/pulumi-kubernetes-provider-$v
  rm -rf "$copy" && cp -r "$dir" "$copy" && chmod -R u+w "$copy"
  work=$SRC/pulumi-kubernetes-wrapper
  rm -rf "$work" && mkdir -p "$work"
  cp toolchain/pulumi-kubernetes/go.mod toolchain/pulumi-kubernetes/go.sum toolchain/pulumi-kubernetes/tools.go "$work/"
  echo "replace $mod => $copy" >>"$work/go.mod"
  (cd "$work" && go build -o "$SRC/pulumi-kubernetes-generate" "$copy/cmd/pulumi-resource-kubernetes/generate.go")
  (cd "$copy/cmd/pulumi-resource-kubernetes" && VERSION=$v "$SRC/pulumi-kubernetes-generate")
  (cd "$work" && go build -trimpath -o "$BIN/pulumi-resource-kubernetes" \
    -ldflags "-s -w -X $mod/pkg/version.Version=$v" \
    $mod/cmd/pulumi-resource-kubernetes)
}

# Stamped as upstream's hack/lib/version.sh does: the API server reports this version, and
# Helm checks it against every chart's kubeVersion.
build_kubernetes() {
  local v major minor date ld="" pkg b
  v=$(version kubernetes k8s.io/kubernetes)
  major=${v#v}; major=${major%%.*}
  minor=${v#v*.}; minor=${minor%%.*}
  date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    (cd toolchain/kubernetes && go build -trimpath -o "$BIN/$b" -ldflags "-s -w$ld" "k8s.io/kubernetes/cmd/$b")
  done
}

build_etcd() {
  (cd toolchain/etcd && go build -trimpath -o "$BIN/etcd" -ldflags "-s -w" go.etcd.io/etcd/server/v3)
}

build_kwok() {
  local v; v=$(version kwok sigs.k8s.io/kwok)
  (cd toolchain/kwok && go build -trimpath -o "$BIN/kwok" \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${v#v}" sigs.k8s.io/kwok/cmd/kwok)
  # kwok's own stage files, from the same verified module: nodes Ready with a lease
  # heartbeat, pods through Running/Ready/Succeeded/deleted, PVCs provisioned and bound
  # (scripts/sim.sh feeds them to kwok).
  local dir share=$TOOLS/share/kwok
  dir=$(cd toolchain/kwok && go mod download -json "sigs.k8s.io/kwok@$v" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  rm -rf "$share" && mkdir -p "$share/stages"
  cp "$dir"/kustomize/stage/node/fast/node-initialize.yaml \
    "$dir"/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    "$dir"/kustomize/stage/pod/fast/pod-{ready,complete,delete}.yaml \
    "$dir"/kustomize/stage/volume/fast/{pv-bind,pv-delete,pvc-provision,pvc-delete}.yaml "$share/stages/"
  cp "$dir"/kustomize/stage/volume/fast/storage-class.yaml "$share/"
  chmod -R u+w "$share"
}

build_keda() {
  local v b; v=$(version keda github.com/kedacore/keda/v2)
  for b in operator adapter webhooks; do
    (cd toolchain/keda && go build -trimpath -o "$BIN/keda-$b" \
      -ldflags "-s -w -X github.com/kedacore/keda/v2/version.Version=${v#v}" \
      "github.com/kedacore/keda/v2/cmd/$b")
  done
}

declare -A BINS=(
  [pulumi]="pulumi"
  [pulumi-yaml]="pulumi-language-yaml"
  [pulumi-kubernetes]="pulumi-resource-kubernetes"
  [kubernetes]="kube-apiserver kube-controller-manager kube-scheduler kubectl"
  [etcd]="etcd"
  [kwok]="kwok"
  [keda]="keda-operator keda-adapter keda-webhooks"
)

total_start=$SECONDS
for name in "${SELECTED[@]}"; do
  [[ -n "${BINS[$name]:-}" ]] || { echo "error: unknown tool '$name'; pick from: ${ALL[*]}" >&2; exit 2; }
  read -r -a bins <<<"${BINS[$name]}"
  if fresh "$name" "${bins[@]}"; then
    echo "toolchain: $name up to date (${BINS[$name]})"
    continue
  fi
  if from_cache "$name" "${bins[@]}"; then
    stamp "$name"
    echo "toolchain: $name taken from the machine's cache ${CACHE} (${BINS[$name]})"
    continue
  fi
  start=$SECONDS
  echo "toolchain: building $name ..."
  # A binary may be a hard link into the cache: never let the build write through it.
  for b in "${bins[@]}"; do rm -f "$BIN/$b"; done
  "build_$name"
  stamp "$name"
  to_cache "$name" "${bins[@]}"
  echo "toolchain: built $name (${BINS[$name]}) in $((SECONDS - start)) s"
done
echo "toolchain: done in $((SECONDS - total_start)) s; binaries in ${BIN#"$ROOT"/}"
