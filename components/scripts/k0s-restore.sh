#!/usr/bin/env bash
# uses: ../jobs/s3.sh
# Restore the cluster's etcd and PKI from an encrypted backup on the first controller, before k0s
# is installed there (k0s-node.sh then starts the restored etcd: it has data, so it joins nothing).
# RESTORE_FROM is `latest` (the newest etcd/*/<time>.tar.gz.age in the bucket) or an object key.
# One-shot: once restored, the object's key is recorded and later runs change nothing; a host that
# already runs k0s, or holds etcd data, refuses (restoring over a cluster would replace it); a
# backup another k0s minor took is refused.
# Env: RESTORE_FROM, K0S_VERSION, S3_URL, S3_REGION.
# Secret, from stdin: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AGE_IDENTITY (AGE-SECRET-KEY-1…).
set -euo pipefail
: "${RESTORE_FROM:?RESTORE_FROM is required}" "${K0S_VERSION:?K0S_VERSION is required}"
: "${AGE_IDENTITY:?AGE_IDENTITY is required}"
marker=/var/lib/cluster-bootstrap/k0s-restored-from
staged="$ROOT/var/lib/cluster-bootstrap/bin/k0s-$K0S_VERSION"

if [ -s "$ROOT$marker" ]; then
  log "restored before from $(cat "$ROOT$marker"): nothing to do (unset k0s.restoreFrom when you like)"
  finish
  exit 0
fi
if [ -e "$ROOT/var/lib/k0s/etcd/member" ] || [ -e "$ROOT/etc/systemd/system/k0scontroller.service" ]; then
  die "this host already runs a k0s cluster (etcd data in /var/lib/k0s/etcd, or k0scontroller installed); refusing to restore $RESTORE_FROM over it. Restore only onto a fresh or reset host (pulumi destroy, or k0s reset), or unset k0s.restoreFrom"
fi
[ -x "$staged" ] || die "k0s $K0S_VERSION is not staged at ${staged#"$ROOT"}; run the Node layer first"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
s3_init "$work"
key="$RESTORE_FROM"
if [ "$key" = latest ]; then
  # newest by the time in the name (etcd/<node>/<YYYYmmddTHHMMSSZ>.tar.gz.age), whichever node
  key="$(s3_keys etcd/ | grep -E '^etcd/[^/]+/[0-9]{8}T[0-9]{6}Z\.tar\.gz\.age$' |
    awk -F/ '{ print $3 " " $0 }' | LC_ALL=C sort | tail -n 1 | cut -d' ' -f2)" || true
  [ -n "$key" ] || die "k0s.restoreFrom is latest, but the backup bucket holds no etcd backup (no etcd/<node>/<time>.tar.gz.age)"
fi
s3_get_sealed "$key" "$work/backup.tar.gz" k0s.restoreFrom
# Restore with the k0s minor that took the backup: a newer one would skip the minors' storage
# migrations (k0s and Kubernetes upgrade one minor at a time), an older one would downgrade etcd's
# data. The backup program records its k0s as the object's metadata.
taken="$(s3_meta k0s-version)"
read -r want_major want_minor <<<"$(minor_of "$K0S_VERSION")"
if [ -z "$taken" ]; then
  log "warning: $key records no k0s version; restoring it with k0s $K0S_VERSION, which must be of the minor that took it"
elif [ "$(minor_of "$taken")" != "$want_major $want_minor" ]; then
  die "k0s.restoreFrom: $key was taken by k0s $taken, and this stack installs $K0S_VERSION: restore with the minor that took it (set versions.k0s to $taken for the rebuild, then upgrade one minor at a time: docs/versions.md), or name a backup taken by $want_major.$want_minor"
fi
mkdir -p "$ROOT/var/lib/cluster-bootstrap"
"$staged" restore "$work/backup.tar.gz" --config-out /var/lib/cluster-bootstrap/restored-k0s.yaml >&2 ||
  die "k0s restore of $key failed"
put_file "$marker" 0644 <<<"$key"
log "restored etcd and the cluster PKI from $key"
finish
