#!/usr/bin/env bash
# Stage the pinned k0s binary at /var/lib/cluster-bootstrap/bin/k0s-VERSION, verified by sha256.
# Nothing running changes here: k0s-node.sh activates it in the cluster's rollout order. Staged
# binaries other than this one and the one k0s runs now are removed (an upgrade keeps two at most).
# Env: K0S_VERSION, K0S_URL (template with {version} and {arch}), K0S_SHA256 (optional,
# "amd64=<hex> arm64=<hex>"; else the release's sha256sums.txt), K0S_UPLOADED (optional: path of
# a binary uploaded from the operator's machine, for airgapped hosts), AIRGAP_BUNDLE_UPLOADED
# (optional: an uploaded image bundle, put where k0s imports bundles before the kubelet starts).
set -euo pipefail
: "${K0S_VERSION:?K0S_VERSION is required}"
arch="$(k0s_arch)"

if [ -n "${AIRGAP_BUNDLE_UPLOADED:-}" ]; then
  bundle=/var/lib/k0s/images/cluster-bootstrap-bundle.tar
  if ! cmp -s "$ROOT$AIRGAP_BUNDLE_UPLOADED" "$ROOT$bundle" 2>/dev/null; then
    mkdir -p "$ROOT$(dirname "$bundle")"
    cp "$ROOT$AIRGAP_BUNDLE_UPLOADED" "$ROOT$bundle.tmp"
    mv -f "$ROOT$bundle.tmp" "$ROOT$bundle"
    log "image bundle placed at $bundle"
    CHANGED=1
  fi
fi
target="/var/lib/cluster-bootstrap/bin/k0s-$K0S_VERSION"

# prune: remove staged binaries that are neither VERSION nor the one installed at /usr/local/bin/k0s
prune() {
  local staged
  for staged in "$ROOT"/var/lib/cluster-bootstrap/bin/k0s-*; do
    [ -e "$staged" ] || continue
    case "$staged" in *.sha256) continue ;; esac
    [ "${staged#"$ROOT"}" != "$target" ] || continue
    if cmp -s "$staged" "$ROOT/usr/local/bin/k0s"; then continue; fi
    rm -f "$staged" "$staged.sha256"
    log "removed staged ${staged##*/}: neither $K0S_VERSION nor the running k0s"
    CHANGED=1
  done
}

pinned=""
for pair in ${K0S_SHA256:-}; do
  if [ "${pair%%=*}" = "$arch" ]; then pinned="${pair#*=}"; fi
done

if [ -x "$ROOT$target" ] && [ -f "$ROOT$target.sha256" ]; then
  have="$(sha256sum "$ROOT$target" | cut -d' ' -f1)"
  if [ "$have" = "$(cat "$ROOT$target.sha256")" ] && { [ -z "$pinned" ] || [ "$have" = "$pinned" ]; }; then
    log "k0s $K0S_VERSION ($arch) already staged"
    prune
    finish
    exit 0
  fi
fi

mkdir -p "$ROOT$(dirname "$target")"
tmp="$(mktemp "$ROOT$target.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
if [ -n "${K0S_UPLOADED:-}" ]; then
  cp "$ROOT$K0S_UPLOADED" "$tmp"
  expected="$pinned"
  [ -n "$expected" ] || expected="$(sha256sum "$tmp" | cut -d' ' -f1)"
  log "using the uploaded binary $K0S_UPLOADED"
else
  : "${K0S_URL:?K0S_URL is required}"
  url="${K0S_URL//\{version\}/$K0S_VERSION}"
  url="${url//\{arch\}/$arch}"
  log "downloading $url"
  curl -fsSL --retry 5 --retry-delay 3 --connect-timeout 20 -o "$tmp" "$url"
  expected="$pinned"
  if [ -z "$expected" ]; then
    sums="$(curl -fsSL --retry 5 --retry-delay 3 --connect-timeout 20 "${url%/*}/sha256sums.txt")"
    expected="$(printf '%s\n' "$sums" | awk -v f="k0s-$K0S_VERSION-$arch" '$2 == f || $2 == "*"f {print $1}')"
    [ -n "$expected" ] || die "no sha256 for k0s-$K0S_VERSION-$arch in ${url%/*}/sha256sums.txt"
  fi
fi
printf '%s  %s\n' "$expected" "$tmp" | sha256sum -c --quiet - || die "sha256 mismatch for k0s $K0S_VERSION ($arch)"
chmod 0755 "$tmp"
mv -f "$tmp" "$ROOT$target"
trap - EXIT
printf '%s' "$expected" >"$ROOT$target.sha256"
log "staged k0s $K0S_VERSION ($arch) sha256 $expected"
CHANGED=1
prune
finish
