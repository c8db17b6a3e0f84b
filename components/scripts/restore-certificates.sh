#!/usr/bin/env bash
# uses: ../jobs/s3.sh
# Put issued certificates' Secrets back from the stack's backup bucket before cert-manager's
# Certificates exist, so a rebuilt cluster serves the certificates it had instead of asking Let's
# Encrypt again (cert-manager re-issues only when a Secret is missing, invalid, near expiry or
# does not match its Certificate). A Secret that exists is never touched; one without a backup is
# left to cert-manager. Runs on the first controller with `k0s kubectl`.
# Env: SECRETS ("namespace/name …"), S3_URL, S3_REGION.
# Secret, from stdin: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
set -euo pipefail
kubectl() { "$ROOT/usr/local/bin/k0s" kubectl "$@"; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
s3_init "$work"

for ref in ${SECRETS:-}; do
  namespace="${ref%%/*}" name="${ref#*/}"
  found="$(kubectl -n "$namespace" get secret "$name" --ignore-not-found -o name)" ||
    die "cannot read secrets in $namespace (is the API up? look with: k0s kubectl get --raw=/readyz)"
  if [ -n "$found" ]; then
    log "secret $ref exists: left as it is"
    continue
  fi
  if ! s3_get "certificates/$namespace/$name.yaml" "$work/secret.yaml"; then
    log "no backup of secret $ref: cert-manager issues it"
    continue
  fi
  kubectl create -f "$work/secret.yaml" >/dev/null || die "could not restore secret $ref from the backup"
  log "restored secret $ref from the backup"
  CHANGED=1
done
finish
