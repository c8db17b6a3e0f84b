#!/bin/sh
# The start of every in-cluster job (joined in front of it): strict mode, log and fail lines named
# after the job, and a private work directory that goes when the job ends.
set -eu
log() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*"; }
fail() { log "error: $*" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 077

# git_basic_auth USER PASSWORD: git sends these credentials as a header, never in a URL or argument.
git_basic_auth() {
  GIT_CONFIG_VALUE_0="Authorization: Basic $(printf '%s:%s' "$1" "$2" | base64 | tr -d '\n')"
  export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraHeader GIT_CONFIG_VALUE_0 GIT_TERMINAL_PROMPT=0
}
