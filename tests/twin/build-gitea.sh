#!/usr/bin/env bash
# Build Gitea for the twin from the wrapper module tests/twin/gitea-module (code.gitea.io/gitea at
# the version tests/twin/gitea.py names: versions.giteaApp; its go.mod's replace and exclude lines
# copied into the wrapper) with SQLite, into
# ${XDG_CACHE_HOME:-~/.cache}/cluster-bootstrap/twin/gitea-v<version>, with its locales and templates
# from the module (no bindata; the API and git transport need no web assets). A second run with the same module does nothing. Without Go, a C
# compiler or the proxy it prints one line and exits 0: the Gitea tests then skip, naming it.
# usage: tests/twin/build-gitea.sh PYTHON
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python=${1:-python3}
command -v go >/dev/null 2>&1 || { echo "twin: go not found: the Gitea twin tests are skipped"; exit 0; }
command -v cc >/dev/null 2>&1 || { echo "twin: no C compiler (Gitea's SQLite needs cgo): the Gitea twin tests are skipped"; exit 0; }
eval "$(cd "$root" && "$python" -c 'from tests.twin import gitea; print(f"VERSION={gitea.version()} OUT={gitea.build_dir()}")')"
stamp="$OUT/.built"
want=$(printf '%s\n' "$VERSION" && cat "$here"/gitea-module/go.{mod,sum} | sha256sum)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT"
log="$OUT/build.log"
echo "twin: building Gitea v$VERSION into $OUT"
cp "$here"/gitea-module/go.{mod,sum} "$work/"
(cd "$work" && go mod edit -require="code.gitea.io/gitea@v$VERSION")
cmp -s "$here/gitea-module/go.mod" "$work/go.mod" || (cd "$work" && go mod tidy >"$log" 2>&1) ||
  { echo "twin: could not resolve code.gitea.io/gitea@v$VERSION (Go module proxy unreachable?), see $log: the Gitea twin tests are skipped"; exit 0; }
(cd "$work" && CGO_ENABLED=1 go build -tags 'sqlite sqlite_unlock_notify' -trimpath \
  -ldflags "-s -w -X main.Version=$VERSION" -o "$OUT/gitea.new" code.gitea.io/gitea \
  >>"$log" 2>&1) ||
  { echo "twin: building Gitea v$VERSION failed, see $log: the Gitea twin tests are skipped"; exit 0; }
# no bindata: Gitea reads its locales and templates from STATIC_ROOT_PATH (tests/twin/gitea.py)
src="$(cd "$work" && go env GOMODCACHE)/code.gitea.io/gitea@v$VERSION"
rm -rf "$OUT/options" "$OUT/templates" && cp -r "$src/options" "$src/templates" "$OUT/" && chmod -R u+w "$OUT/options" "$OUT/templates"
mv -f "$OUT/gitea.new" "$OUT/gitea"
printf '%s\n' "$want" >"$stamp"
