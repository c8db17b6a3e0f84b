#!/usr/bin/env bash
# uses: ../jobs/s3.sh
# What the cluster-bootstrap-etcd-backup timer runs on a controller (etcd-backup-timer.sh installs
# it): `k0s backup` (the etcd snapshot, the cluster PKI with the CA keys, k0s.yaml), encrypted with
# age to AGE_RECIPIENT before it leaves the host, uploaded to etcd/<node>/<UTC time>.tar.gz.age in
# the backup bucket; the local archive is removed whatever happens. Any failure fails the unit.
# One controller uploads per run: the etcd member whose name sorts first (every controller asks
# etcd, which answers alike on each while it has quorum); the others log that and succeed.
# Env: NODE_NAME, AGE_RECIPIENT, S3_URL, S3_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
# (from the unit's EnvironmentFile, root-only).
set -euo pipefail
: "${NODE_NAME:?NODE_NAME is required}" "${AGE_RECIPIENT:?AGE_RECIPIENT is required}"
bin="$ROOT/usr/local/bin/k0s"
command -v age >/dev/null 2>&1 || die "age is not installed (apt-get install age; dnf install age)"

members="$("$bin" etcd member-list)" || die "cannot list etcd members (is k0s running here?)"
# {"members":{"<name>":"<peer URL>",…}} (k0s cmd/etcd/list.go); a member added but not yet started
# has no name yet, and is left out
uploader="$(printf '%s' "$members" | grep -o '"[^"]\+":"https://' | cut -d'"' -f2 | LC_ALL=C sort | head -n 1)"
if [ "$uploader" != "$NODE_NAME" ]; then
  log "skipped: etcd member ${uploader:-?} uploads this run (the member whose name sorts first)"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
s3_init "$work"
mkdir -m 0700 "$work/plain"
"$bin" backup --save-path "$work/plain" >&2 || die "k0s backup failed"
set -- "$work"/plain/k0s_backup_*.tar.gz
[ -f "$1" ] || die "k0s backup wrote no archive"
age -r "$AGE_RECIPIENT" -o "$work/archive.age" "$1" || die "could not encrypt the backup"
rm -rf "$work/plain"  # nothing unencrypted stays on disk
key="etcd/$NODE_NAME/$(date -u +%Y%m%dT%H%M%SZ).tar.gz.age"
s3_put "$key" "$work/archive.age"
log "uploaded $key"
