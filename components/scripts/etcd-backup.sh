#!/usr/bin/env bash
# uses: ../jobs/s3.sh
# What the cluster-bootstrap-etcd-backup timer runs on a controller (etcd-backup-timer.sh installs
# it): `k0s backup` (the etcd snapshot, the cluster PKI with the CA keys, k0s.yaml), encrypted with
# age to AGE_RECIPIENT before it leaves the host, uploaded to etcd/<node>/<UTC time>.tar.gz.age in
# the backup bucket (its metadata k0s-version: the k0s that took it); the local archive is removed
# whatever happens. Then, with GITEA_NAMESPACE,
# all of Gitea: `gitea dump` run in Gitea's container, streamed through age on this host (nothing
# unencrypted is written anywhere) to gitea/<UTC time>.tar.gz.age (its metadata gitea-version: the
# Gitea that dumped it). Any failure fails the unit.
# One controller uploads per run: the etcd member whose name sorts first (every controller asks
# etcd, which answers alike on each while it has quorum); the others log that and succeed.
# Env: NODE_NAME, AGE_RECIPIENT, S3_URL, S3_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
# (from the unit's EnvironmentFile, root-only); GITEA_NAMESPACE, GITEA_SELECTOR, GITEA_CONTAINER.
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
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
key="etcd/$NODE_NAME/$stamp.tar.gz.age"
# the k0s that took it, as object metadata: a restore refuses another minor (k0s-restore.sh)
version="$("$bin" version)" || die "cannot read this controller's k0s version"
s3_put "$key" "$work/archive.age" "x-amz-meta-k0s-version: $version"
log "uploaded $key"
rm -f "$work/archive.age"

[ -n "${GITEA_NAMESPACE:-}" ] || exit 0
kubectl() { "$bin" kubectl "$@"; }
deployment="$(kubectl -n "$GITEA_NAMESPACE" get deployments -l "$GITEA_SELECTOR" -o name)" ||
  die "cannot list Gitea's deployment in $GITEA_NAMESPACE"
if [ -z "$deployment" ]; then
  log "no Gitea in namespace $GITEA_NAMESPACE yet: only etcd backed up"
  exit 0
fi
# (every name, one a line: a jsonpath of .items[0] fails on an empty list)
pods="$(kubectl -n "$GITEA_NAMESPACE" get pods -l "$GITEA_SELECTOR" --field-selector=status.phase=Running \
  -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}')" || die "cannot list Gitea's pods in $GITEA_NAMESPACE"
pod="${pods%%$'\n'*}"
[ -n "$pod" ] || die "Gitea is installed but no pod of it runs in $GITEA_NAMESPACE: Gitea not backed up"
# --skip-index: the issue indexer is rebuilt from the database (and its files may be mid-write);
# --skip-log: logs are not state. The dump goes to stdout, Gitea's log to stderr (the journal).
set +e
kubectl -n "$GITEA_NAMESPACE" exec "$pod" -c "$GITEA_CONTAINER" -- \
  gitea dump --type tar.gz --file - --skip-index --skip-log --quiet </dev/null |
  age -r "$AGE_RECIPIENT" -o "$work/gitea.age"
statuses=("${PIPESTATUS[@]}")
set -e
[ "${statuses[0]}" = 0 ] || die "gitea dump in $GITEA_NAMESPACE/$pod failed (exit ${statuses[0]}): nothing uploaded"
[ "${statuses[1]}" = 0 ] || die "could not encrypt Gitea's dump"
# the Gitea that dumped it, as object metadata: a restore refuses a newer one (gitea-restore.sh)
gitea_version="$(kubectl -n "$GITEA_NAMESPACE" exec "$pod" -c "$GITEA_CONTAINER" -- gitea --version </dev/null |
  awk 'tolower($1) == "gitea" && $2 == "version" { print $3 }')" || die "cannot read Gitea's version in $pod"
key="gitea/$stamp.tar.gz.age"
s3_put "$key" "$work/gitea.age" "x-amz-meta-gitea-version: $gitea_version"
log "uploaded $key ($(wc -c <"$work/gitea.age" | tr -d ' ') bytes)"
