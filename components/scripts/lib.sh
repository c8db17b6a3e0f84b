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

finish() {
  if [ "$CHANGED" = 1 ]; then log "done: changed"; else log "done: unchanged"; fi
}
