#!/bin/sh
# uses: job.sh s3.sh
# Seed the in-cluster Gitea for Flux, from inside the cluster (a Kubernetes Job):
# the organisation, the private repository, Flux's read-only deploy key, the push webhook to
# Flux's Receiver and, only while the repository is empty, its content: the branches and tags of
# the last backup when the stack's bucket holds one (a rebuilt cluster), else a first commit of
# gitops/. Idempotent: a second run changes nothing; it never force-pushes or rewrites history.
#
# Environment: GITEA_URL, GITEA_USER, GITEA_PASSWORD, ORG, REPO, BRANCH, DEPLOY_KEY (OpenSSH
# public key), DEPLOY_KEY_TITLE, WEBHOOK_URL, WEBHOOK_SECRET, CONTENT (a directory holding
# gitops.tar and sops.yaml), WAIT_SECONDS (how long to wait for Gitea, default 600); with
# backups: S3_URL, S3_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.

# Credentials stay out of every command line: curl reads a netrc file, git an environment header.
host=${GITEA_URL#*://}
host=${host%%/*}
printf 'machine %s login %s password %s\n' "${host%%:*}" "$GITEA_USER" "$GITEA_PASSWORD" >"$work/netrc"
git_basic_auth "$GITEA_USER" "$GITEA_PASSWORD"

# api METHOD PATH [JSON]: the response body lands in $work/body, the HTTP status in $status.
api() {
  if [ "$#" -eq 3 ]; then
    status=$(curl -sS --netrc-file "$work/netrc" -o "$work/body" -w '%{http_code}' -X "$1" \
      -H 'Content-Type: application/json' --data "$3" "$GITEA_URL/api/v1$2")
  else
    status=$(curl -sS --netrc-file "$work/netrc" -o "$work/body" -w '%{http_code}' -X "$1" \
      "$GITEA_URL/api/v1$2")
  fi
}

expect() {  # expect WHAT STATUS...: fail unless $status is one of them
  what=$1
  shift
  for ok in "$@"; do
    [ "$status" = "$ok" ] && return 0
  done
  fail "$what: HTTP $status: $(head -c 300 "$work/body")"
}

waited=0
until curl -fsS -o /dev/null "$GITEA_URL/api/healthz"; do
  [ "$waited" -ge "${WAIT_SECONDS:-600}" ] && fail "Gitea at $GITEA_URL not healthy after ${waited}s"
  sleep 5
  waited=$((waited + 5))
done
log "Gitea is up at $GITEA_URL"

api GET "/orgs/$ORG"
if [ "$status" = 404 ]; then
  api POST /orgs "{\"username\":\"$ORG\",\"visibility\":\"private\"}"
  expect "creating organisation $ORG" 201
  log "created organisation $ORG"
else
  expect "reading organisation $ORG" 200
  log "organisation $ORG exists"
fi

api GET "/repos/$ORG/$REPO"
if [ "$status" = 404 ]; then
  api POST "/orgs/$ORG/repos" \
    "{\"name\":\"$REPO\",\"private\":true,\"auto_init\":false,\"default_branch\":\"$BRANCH\"}"
  expect "creating repository $ORG/$REPO" 201
  log "created private repository $ORG/$REPO"
else
  expect "reading repository $ORG/$REPO" 200
  log "repository $ORG/$REPO exists"
fi

key_material=$(printf '%s' "$DEPLOY_KEY" | cut -d' ' -f1,2)
api GET "/repos/$ORG/$REPO/keys"
expect "listing deploy keys" 200
if grep -qF "$(printf '%s' "$key_material" | cut -d' ' -f2)" "$work/body"; then
  log "Flux's deploy key $DEPLOY_KEY_TITLE is registered"
else
  api POST "/repos/$ORG/$REPO/keys" \
    "{\"title\":\"$DEPLOY_KEY_TITLE\",\"key\":\"$key_material\",\"read_only\":true}"
  expect "adding the deploy key" 201
  log "added Flux's read-only deploy key $DEPLOY_KEY_TITLE"
fi

api GET "/repos/$ORG/$REPO/hooks"
expect "listing webhooks" 200
if grep -qF "$WEBHOOK_URL" "$work/body"; then
  log "push webhook to Flux's Receiver is registered"
else
  api POST "/repos/$ORG/$REPO/hooks" "{\"type\":\"gitea\",\"active\":true,\"events\":[\"push\"],\
\"branch_filter\":\"$BRANCH\",\"config\":{\"url\":\"$WEBHOOK_URL\",\"content_type\":\"json\",\
\"secret\":\"$WEBHOOK_SECRET\"}}"
  expect "adding the webhook" 201
  log "added the push webhook to Flux's Receiver"
fi

remote="$GITEA_URL/$ORG/$REPO.git"
if [ -n "$(git ls-remote --heads "$remote")" ]; then
  log "repository has history: left as it is (Flux's repository now; nothing pushed)"
  exit 0
fi
if [ -n "${S3_URL:-}" ]; then
  s3_init "$work"
  if s3_get "gitops/$ORG/$REPO.bundle" "$work/backup.bundle"; then
    git init -q --bare "$work/restore.git"
    git -C "$work/restore.git" bundle verify -q "$work/backup.bundle" >/dev/null ||
      fail "the backup bundle gitops/$ORG/$REPO.bundle is damaged; restore an older version of it in the bucket"
    git -C "$work/restore.git" fetch -q "$work/backup.bundle" 'refs/heads/*:refs/heads/*' 'refs/tags/*:refs/tags/*'
    git -C "$work/restore.git" push -q "$remote" 'refs/heads/*:refs/heads/*' 'refs/tags/*:refs/tags/*'
    when=$(s3_get last-good-backup "$work/last" && sed -n 's/^time: //p' "$work/last" || true)
    log "restored $(git -C "$work/restore.git" for-each-ref | wc -l | tr -d ' ') branches and tags of $ORG/$REPO from the backup${when:+ of $when}"
    if ! git -C "$work/restore.git" show "refs/heads/$BRANCH:.sops.yaml" 2>/dev/null | cmp -s - "$CONTENT/sops.yaml"; then
      log "warning: the restored .sops.yaml differs from this stack's: Flux decrypts only what this stack's age identity can (keep sops.ageKey, or protect the identity, across rebuilds)"
    fi
    exit 0
  fi
  log "no backup of $ORG/$REPO in the bucket: seeding it"
fi
mkdir "$work/repo"
tar -xf "$CONTENT/gitops.tar" -C "$work/repo"
cp "$CONTENT/sops.yaml" "$work/repo/.sops.yaml"
cd "$work/repo"
git init -q -b "$BRANCH"
git add -A
git -c user.name=cluster-bootstrap -c user.email="cluster-bootstrap@$host" \
  commit -q -m "Initial GitOps content from cluster-bootstrap"
git push -q "$remote" "HEAD:refs/heads/$BRANCH"
log "pushed the initial commit ($(git rev-parse --short HEAD), $(git ls-files | wc -l | tr -d ' ') files) to $BRANCH"
