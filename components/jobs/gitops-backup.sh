#!/bin/sh
# uses: job.sh s3.sh
# Back up what a rebuilt cluster cannot get back by itself, to the stack's S3 bucket (an
# in-cluster CronJob): the GitOps repository as a git bundle of all its refs, and the Secrets of
# the certificates cert-manager issued, as they are to be created again. Last, the object
# `last-good-backup` records when and what. A repository without refs is never written over the
# last bundle. The bucket is versioned: each run keeps the older copies for the retention period.
#
# Environment: GITEA_URL, GITEA_USER, GITEA_PASSWORD, ORG, REPO, SECRETS ("namespace/name …"),
# S3_URL, S3_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; KUBE_API (default: the in-cluster
# API), KUBE_TOKEN_FILE and KUBE_CA (default: the pod's service account).
s3_init "$work"

sa=/var/run/secrets/kubernetes.io/serviceaccount
KUBE_API=${KUBE_API:-https://kubernetes.default.svc}
KUBE_TOKEN_FILE=${KUBE_TOKEN_FILE:-$sa/token}
KUBE_CA=${KUBE_CA-$sa/ca.crt}

# kube_get PATH FILE: the object as YAML (as `kubectl get -o yaml` shows it); prints the HTTP status.
kube_get() {
  printf 'header = "Authorization: Bearer %s"\n' "$(cat "$KUBE_TOKEN_FILE")" >"$work/kube.curlrc"
  if [ -n "$KUBE_CA" ]; then
    curl -sS -o "$2" -w '%{http_code}' -K "$work/kube.curlrc" --cacert "$KUBE_CA" \
      -H 'Accept: application/yaml' "$KUBE_API$1" || echo 000
  else
    curl -sS -o "$2" -w '%{http_code}' -K "$work/kube.curlrc" -H 'Accept: application/yaml' "$KUBE_API$1" || echo 000
  fi
}

# as_created: a Secret as the API prints it, without what the API server sets itself (its
# identity, version and history in this cluster) and without owner references (their owners'
# ids die with the cluster, and the garbage collector would delete the restored Secret).
as_created() {
  awk '
    /^  (managedFields|ownerReferences):/ { block = 1; next }
    block && /^  [^ -]/ { block = 0 }
    block && /^[^ ]/ { block = 0 }
    block { next }
    /^  (creationTimestamp|deletionGracePeriodSeconds|deletionTimestamp|generation|resourceVersion|selfLink|uid):/ { next }
    { print }
  '
}

# The repository: every ref, from a mirror clone.
git_basic_auth "$GITEA_USER" "$GITEA_PASSWORD"
git clone -q --mirror "$GITEA_URL/$ORG/$REPO.git" "$work/repo.git" || fail "cannot clone $ORG/$REPO from $GITEA_URL"
refs=$(git -C "$work/repo.git" for-each-ref | wc -l | tr -d ' ')
[ "$refs" -gt 0 ] || fail "$ORG/$REPO has no refs: the last bundle in the bucket is left as it is"
git -C "$work/repo.git" bundle create -q "$work/repo.bundle" --all
git -C "$work/repo.git" bundle verify -q "$work/repo.bundle" >/dev/null
s3_put "gitops/$ORG/$REPO.bundle" "$work/repo.bundle"
head=$(git -C "$work/repo.git" rev-parse HEAD 2>/dev/null || echo none)
log "backed up $ORG/$REPO: $refs refs, HEAD $head"

# The issued certificates' Secrets.
saved=""
for ref in ${SECRETS:-}; do
  namespace=${ref%%/*} name=${ref#*/}
  status=$(kube_get "/api/v1/namespaces/$namespace/secrets/$name" "$work/secret.yaml")
  case "$status" in
    200) ;;
    404) log "secret $ref does not exist (not issued yet): nothing to back up"; continue ;;
    *) fail "reading secret $ref: HTTP $status $(head -c 300 "$work/secret.yaml")" ;;
  esac
  grep -q '^    cert-manager.io/certificate-name: ' "$work/secret.yaml" ||
    fail "secret $ref is not one cert-manager issued (no cert-manager.io/certificate-name annotation)"
  as_created <"$work/secret.yaml" >"$work/created.yaml"
  s3_put "certificates/$namespace/$name.yaml" "$work/created.yaml"
  saved="$saved $ref"
  log "backed up secret $ref"
done

printf 'time: %s\nrepository: %s/%s\nrefs: %s\nhead: %s\nsecrets:%s\n' \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$ORG" "$REPO" "$refs" "$head" "$saved" >"$work/last"
s3_put last-good-backup "$work/last"
log "done: $(tr '\n' ' ' <"$work/last")"
