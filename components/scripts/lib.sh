#!/usr/bin/env bash
# Helpers joined in front of every script run on a host (components/remote.py does the joining).
# ROOT prefixes every path the scripts write: empty on hosts, a temporary root in tests.
set -euo pipefail
ROOT="${ROOT:-}"
CHANGED=0
# shellcheck disable=SC2034  # read by the scripts that call put_file
FILE_CHANGED=0

log() { printf '[%s] %s\n' "${CB_SCRIPT:-cluster-bootstrap}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# put_file PATH MODE < content — write PATH (under ROOT) only when the content differs.
# Sets FILE_CHANGED to 1 when it wrote, 0 when the file was already right. Feed it with a
# redirection, never a pipe: a pipe runs it in a subshell and the flags are lost.
put_file() {
  local path="$ROOT$1" mode="$2" tmp
  mkdir -p "$(dirname "$path")"
  tmp="$(mktemp "$path.XXXXXX")"
  cat >"$tmp"
  if [ -f "$path" ] && cmp -s "$tmp" "$path"; then
    rm -f "$tmp"
    FILE_CHANGED=0
    return 0
  fi
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$path"
  log "wrote $1"
  # shellcheck disable=SC2034  # read by the scripts that call put_file
  FILE_CHANGED=1
  CHANGED=1
}

# remove_file PATH — delete PATH (under ROOT) if present.
remove_file() {
  if [ -e "$ROOT$1" ]; then
    rm -f "$ROOT$1"
    log "removed $1"
    CHANGED=1
  fi
}

# k0s_arch — the k0s release architecture of this host.
k0s_arch() {
  case "$(uname -m)" in
    x86_64 | amd64) echo amd64 ;;
    aarch64 | arm64) echo arm64 ;;
    armv7l | armv7) echo arm ;;
    riscv64) echo riscv64 ;;
    *) die "unsupported CPU architecture $(uname -m); k0s ships amd64, arm64, arm and riscv64" ;;
  esac
}

# minor_of VERSION — "1 35" of v1.35.7+k0s.0, of v1.20.0 and of 1.20.0: major and minor.
minor_of() { local v="${1#v}"; v="${v%%+*}"; echo "${v%%.*} $(echo "$v" | cut -d. -f2)"; }

# version_lt A B — true when version A is older than B (k0s: v1.34.2+k0s.0 < v1.34.10+k0s.0; Gitea).
version_lt() {
  [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$1" ]
}

# refuse_downgrade BIN TARGET — die when BIN runs a newer k0s than TARGET (k0s cannot go back:
# etcd and API storage versions only move forward; k0sctl refuses the same).
refuse_downgrade() {
  local running
  [ -x "$1" ] || return 0
  running="$("$1" version 2>/dev/null || true)"
  if [ -n "$running" ] && version_lt "$2" "$running"; then
    die "refusing to downgrade k0s from $running to $2; k0s does not support downgrades (reinstall the node to go back)"
  fi
}

# registry_dropin VERSION — the containerd drop-in that makes k0s's containerd read the registry
# hosts under /etc/k0s/containerd.d/certs.d (trust-ca.sh writes them). Its format follows the
# containerd the k0s VERSION ships: config version 2 up to k0s 1.35 (containerd 1.7), version 3
# from 1.36 (containerd 2, whose pre-flight rejects version 2 and the io.containerd.grpc.v1.cri path).
registry_dropin() {
  if version_lt "$1" v1.36.0; then
    printf 'version = 2\n\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/k0s/containerd.d/certs.d"\n'
  else
    printf 'version = 3\n\n[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "/etc/k0s/containerd.d/certs.d"\n'
  fi
}

# install_args ROLE — `k0s install` arguments for this node (also what a reinstall compares).
# Labels are not among them: k0s applies --labels only when a node registers, so k8s-node.sh keeps
# them in step through the API instead. Env: KUBELET_NODE_IP, JOINS (true with a token file).
install_args() {
  local args=()
  case "$1" in
    controller) args+=(controller --config /etc/k0s/k0s.yaml) ;;
    controller+worker) args+=(controller --config /etc/k0s/k0s.yaml --enable-worker --no-taints) ;;
    worker) args+=(worker) ;;
  esac
  if [ "$1" != controller ] && [ -n "${KUBELET_NODE_IP:-}" ]; then
    args+=("--kubelet-extra-args=--node-ip=$KUBELET_NODE_IP")
  fi
  if [ "${JOINS:-false}" = true ]; then args+=(--token-file /etc/k0s/join-token); fi
  printf '%s\n' "${args[@]}"
}

# token_in ENVELOPE / token_expiry ENVELOPE — the token, and when it expires (unix time), of what
# k0s-token.sh printed.
token_in() { printf '%s\n' "$1" | sed '/^expires=/d'; }
token_expiry() { printf '%s\n' "$1" | sed -n 's/^expires=//p'; }

# retry_until DEADLINE MESSAGE CMD... — run CMD (quietly) every 2 s until it succeeds; once
# SECONDS reaches DEADLINE, die with MESSAGE.
retry_until() {
  local deadline="$1" message="$2"
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "$message"
    sleep 2
  done
}

finish() {
  if [ "$CHANGED" = 1 ]; then log "done: changed"; else log "done: unchanged"; fi
}
