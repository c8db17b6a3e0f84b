#!/usr/bin/env bash
# Build the twin's binaries (kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kwok) at the
# versions tests/twin/versions.py derives from Pulumi.yaml's k0s pin, into
# ${XDG_CACHE_HOME:-~/.cache}/cluster-bootstrap/twin/<versions>/bin. A second run with the same
# versions and wrapper modules does nothing. Without Go or the module proxy it prints one line and
# exits 0: the twin tests then skip, naming what is missing.
# usage: tests/twin/build.sh PYTHON
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python=${1:-python3}
case $python in */*) python="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")" ;; esac

command -v go >/dev/null 2>&1 || { echo "twin: go not found: the twin tests are skipped"; exit 0; }
eval "$(cd "$root" && "$python" -m tests.twin.versions)"
# Cilium's CRDs (its operator registers them at run time) come from its Go module at the pin.
cilium_crds() {
  [ -d "$(go env GOMODCACHE)/github.com/cilium/cilium@v$CILIUM/pkg/k8s/apis/cilium.io/client/crds" ] \
    || (cd / && GOFLAGS=-mod=mod go mod download "github.com/cilium/cilium@v$CILIUM" 2>/dev/null) \
    || echo "twin: could not fetch github.com/cilium/cilium@v$CILIUM (its CRDs): the twin tests skip"
}
stamp="$OUT/bin/.built"
want=$(printf '%s\n' "$KUBE $ETCD $KWOK" && cat "$0" "$here"/{controlplane,etcd,kwok}/go.{mod,sum} | sha256sum)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then cilium_crds; exit 0; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log="$OUT/build.log"
mkdir -p "$OUT"
: > "$log"
echo "twin: building kubernetes v$KUBE, etcd v$ETCD (k0s $K0S bundles v$ETCD_BUNDLED), kwok v$KWOK into $OUT"

# Copy the wrapper modules and point them at these versions (no change when they already match).
for m in controlplane etcd kwok; do cp -r "$here/$m" "$work/$m"; done
staging="v0.${KUBE#*.}"
(cd "$work/controlplane" && go mod edit -require="k8s.io/kubernetes@v$KUBE" \
  && sed -i "s|^\(\t\(k8s.io/[a-z0-9-]*\) => \2\) v0\.[0-9.]*$|\1 $staging|" go.mod)
(cd "$work/etcd" && go mod edit -require="go.etcd.io/etcd/server/v3@v$ETCD")
(cd "$work/kwok" && go mod edit -require="sigs.k8s.io/kwok@v$KWOK")
for m in controlplane etcd kwok; do
  cmp -s "$here/$m/go.mod" "$work/$m/go.mod" || (cd "$work/$m" && go mod tidy >>"$log" 2>&1) \
    || { echo "twin: could not resolve the $m module at these versions (Go module proxy unreachable?), see $log: the twin tests are skipped"; exit 0; }
done

export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:+$GOFLAGS }-trimpath"
minor=${KUBE#*.}; minor=${minor%%.*}
x=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  x="$x -X $pkg.gitVersion=v$KUBE -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
rm -rf "${OUT:?}/bin.new" && mkdir -p "$OUT/bin.new"
build() {  # build DIR OUTPUT LDFLAGS PACKAGE...
  local dir=$1 output=$2 flags=$3; shift 3
  (cd "$work/$dir" && go build -ldflags="-s -w $flags" -o "$output" "$@" >>"$log" 2>&1) \
    || { echo "twin: building $* failed (Go module proxy unreachable?), see $log: the twin tests are skipped"; exit 0; }
}
build controlplane "$OUT/bin.new/" "$x" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler
build etcd "$OUT/bin.new/etcd" "" go.etcd.io/etcd/server/v3
build kwok "$OUT/bin.new/" "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK" sigs.k8s.io/kwok/cmd/kwok
rm -rf "${OUT:?}/bin" && mv "$OUT/bin.new" "$OUT/bin"
printf '%s\n' "$want" > "$stamp"
echo "twin: built etcd kube-apiserver kube-controller-manager kube-scheduler kwok in $OUT/bin"
cilium_crds
