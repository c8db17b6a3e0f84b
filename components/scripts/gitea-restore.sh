#!/usr/bin/env bash
# uses: ../jobs/s3.sh
# gitea.restoreFrom: put a whole Gitea back (users and their keys, every repository, issues,
# settings) from an encrypted `gitea dump` in the backup bucket, into the freshly installed Gitea of
# a rebuilt cluster, before its seed Job and Flux. Runs on the first controller with `k0s kubectl`:
# the archive is decrypted here (the stack's age identity never enters the cluster this way) and
# streamed into the Gitea pod's volume; the pod is then recreated and its first init container
# (gitea-restore-init.sh) swaps the dump in while Gitea is stopped.
# One-shot: the volume records what it was restored from, and later runs change nothing; a Gitea
# that already holds repositories refuses (restoring would replace them), and so does a Gitea older
# than the one that dumped it.
# Env: RESTORE_FROM (latest, or an object key gitea/<time>.tar.gz.age), NAMESPACE, SELECTOR (the
# pod's labels), CONTAINER, DATA (the volume's mount path), REPO_ROOT, S3_URL, S3_REGION.
# Secret, from stdin: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AGE_IDENTITY.
set -euo pipefail
: "${RESTORE_FROM:?RESTORE_FROM is required}" "${NAMESPACE:?NAMESPACE is required}" "${AGE_IDENTITY:?AGE_IDENTITY is required}"
kubectl() { "$ROOT/usr/local/bin/k0s" kubectl "$@"; }
state="$DATA/.cluster-bootstrap"

running_pod() {  # the name of Gitea's running pod, or nothing (fails when the API does not answer)
  local names
  names="$(kubectl -n "$NAMESPACE" get pods -l "$SELECTOR" --field-selector=status.phase=Running \
    -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}')" || return 1
  printf '%s' "${names%%$'\n'*}"
}
in_pod() {  # in_pod POD COMMAND...: in Gitea's container, stdin passed on
  local pod="$1"
  shift
  kubectl -n "$NAMESPACE" exec -i "$pod" -c "$CONTAINER" -- "$@"
}
# (the single-quoted programs run in the pod's shell, with their paths as arguments)
# shellcheck disable=SC2016
restored_from() { in_pod "$1" sh -c 'cat "$1" 2>/dev/null || true' sh "$state/restored-from" </dev/null; }

pod="$(running_pod)" || die "cannot list Gitea's pods in $NAMESPACE (is the API up? k0s kubectl get --raw=/readyz)"
[ -n "$pod" ] || die "no running Gitea pod in namespace $NAMESPACE ($SELECTOR): look with k0s kubectl -n $NAMESPACE get pods"
before="$(restored_from "$pod")"
if [ -n "$before" ]; then
  log "Gitea was restored from $before: nothing to do (unset gitea.restoreFrom when you like)"
  finish
  exit 0
fi
# shellcheck disable=SC2016
held="$(in_pod "$pod" sh -c 'ls -A "$1" 2>/dev/null | head -n 3' sh "$REPO_ROOT" </dev/null)"
[ -z "$held" ] ||
  die "Gitea in $NAMESPACE already holds repositories ($(printf '%s' "$held" | tr '\n' ' ')in $REPO_ROOT); refusing to restore $RESTORE_FROM over them. Restore only into a new Gitea (a rebuilt cluster, or after deleting its volume), or unset gitea.restoreFrom"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
s3_init "$work"
key="$RESTORE_FROM"
if [ "$key" = latest ]; then
  key="$(s3_keys gitea/ | grep -E '^gitea/[0-9]{8}T[0-9]{6}Z\.tar\.gz\.age$' | LC_ALL=C sort | tail -n 1)" || true
  [ -n "$key" ] || die "gitea.restoreFrom is latest, but the backup bucket holds no Gitea backup (no gitea/<time>.tar.gz.age)"
fi
s3_get_sealed "$key" "$work/dump.tar.gz" gitea.restoreFrom
# Gitea migrates an older database forward on start, and cannot take a newer one back.
dumped="$(s3_meta gitea-version)"
running="$(in_pod "$pod" gitea --version </dev/null | awk 'tolower($1) == "gitea" && $2 == "version" { print $3 }')" ||
  die "cannot read the running Gitea's version"
if [ -n "$dumped" ] && version_lt "$running" "$dumped"; then
  die "gitea.restoreFrom: $key was dumped by Gitea $dumped, newer than this stack's Gitea $running, which cannot read its database: set versions.giteaApp to $dumped or later, or name an older backup"
fi

# Staged on Gitea's own volume, beside its data (the init container moves it in).
# shellcheck disable=SC2016
in_pod "$pod" sh -c 'rm -rf "$1" && mkdir -p "$1/dump" && tar -xzf - -C "$1/dump" && printf "%s\n" "$2" >"$1/ready"' \
  sh "$state/restore" "$key" <"$work/dump.tar.gz" || die "could not stage $key in Gitea's volume"
rm -f "$work/dump.tar.gz"
log "staged $key in Gitea's volume; recreating the pod"
kubectl -n "$NAMESPACE" delete pod "$pod" --wait=true >&2 || die "could not delete Gitea's pod $pod"
CHANGED=1
new=""
for _ in $(seq 1 120); do
  new="$(running_pod)" || true
  [ -n "$new" ] && [ "$new" != "$pod" ] && break
  new=""
  sleep 5
done
[ -n "$new" ] || die "no new Gitea pod after 10 minutes: k0s kubectl -n $NAMESPACE describe pods -l $SELECTOR"
kubectl -n "$NAMESPACE" wait --for=condition=Ready "pod/$new" --timeout=900s >&2 ||
  die "Gitea's pod $new is not ready: k0s kubectl -n $NAMESPACE logs $new -c restore"
[ "$(restored_from "$new")" = "$key" ] || die "Gitea did not restore $key: k0s kubectl -n $NAMESPACE logs $new -c restore"
# The repositories' hooks call this Gitea (Gitea's backup-and-restore docs: regenerate them).
in_pod "$new" gitea admin regenerate hooks </dev/null >&2 || die "could not regenerate the repositories' git hooks"
log "restored Gitea from $key"
finish
