#!/usr/bin/env bash
# Build Flux's source-controller and kustomize-controller for the twin from the wrapper modules
# tests/twin/<controller>/ (each a go.mod and go.sum: the controller's module at the version
# tests/twin/flux.py names, with the replace lines its own go.mod carries), into
# ${XDG_CACHE_HOME:-~/.cache}/cluster-bootstrap/twin/<controller>-v<version>. A second run with the
# same modules does nothing. Without Go or the proxy it prints one line and exits 0: the Flux twin
# tests then skip, naming what is missing.
# usage: tests/twin/build-flux.sh PYTHON
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python=${1:-python3}
command -v go >/dev/null 2>&1 || { echo "twin: go not found: the Flux twin tests are skipped"; exit 0; }
(cd "$root" && "$python" -m tests.twin.flux) | while read -r controller version out; do
  stamp="$out/.built"
  want=$(printf '%s\n' "$version" && cat "$here/$controller"/go.{mod,sum} | sha256sum)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then continue; fi
  mkdir -p "$out"
  echo "twin: building $controller v$version into $out"
  (cd "$here/$controller" && GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly -trimpath" CGO_ENABLED=0 \
    go build -ldflags '-s -w' -o "$out/$controller.new" "github.com/fluxcd/$controller" >"$out/build.log" 2>&1) ||
    { echo "twin: building $controller v$version failed (Go module proxy unreachable?), see $out/build.log: the Flux twin tests are skipped"; continue; }
  mv -f "$out/$controller.new" "$out/$controller"
  printf '%s\n' "$want" >"$stamp"
done
