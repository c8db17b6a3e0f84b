#!/usr/bin/env bash
# Read the k0s this host runs and refuse a K0S_VERSION that k0s cannot move to from it, before any
# host is changed: k0s upgrades one minor at a time (controllers first, from the newest patch of
# the old minor; k0s docs/version-skew-policy.md at v1.36.3+k0s.2) and never goes back. A host
# without k0s takes any version. Read-only: it changes nothing.
# Env: K0S_VERSION (the target), NODE_NAME.
set -euo pipefail
: "${K0S_VERSION:?K0S_VERSION is required}" "${NODE_NAME:?NODE_NAME is required}"
bin="$ROOT/usr/local/bin/k0s"

running=""
if [ -x "$bin" ]; then running="$("$bin" version 2>/dev/null || true)"; fi
if [ -z "$running" ]; then
  log "$NODE_NAME runs no k0s: $K0S_VERSION installs fresh"
  finish
  exit 0
fi

read -r have_major have_minor <<<"$(minor_of "$running")"
read -r want_major want_minor <<<"$(minor_of "$K0S_VERSION")"

if version_lt "$K0S_VERSION" "$running"; then
  die "host $NODE_NAME runs k0s $running, newer than $K0S_VERSION: k0s does not support downgrades (restore from a backup, or reinstall the node, to go back); set versions.k0s to $running or later"
fi
if [ "$want_major" != "$have_major" ] || [ "$want_minor" -gt $((have_minor + 1)) ]; then
  die "host $NODE_NAME runs k0s $running; $K0S_VERSION is more than one minor ahead, and k0s upgrades one minor at a time (docs/version-skew-policy.md): upgrade to v$have_major.$((have_minor + 1)).x first — set versions.k0s to the newest v$have_major.$((have_minor + 1)) release, run pulumi up, then move on to $K0S_VERSION (README: Upgrading from an earlier release)"
fi
log "$NODE_NAME runs k0s $running: $K0S_VERSION is a step k0s supports"
finish
