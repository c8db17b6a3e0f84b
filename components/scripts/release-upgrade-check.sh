#!/usr/bin/env bash
# Refuse a release version more than one minor ahead of (or behind) the one the cluster runs,
# before the release changes: Cilium and cert-manager upgrade one minor at a time, from the newest
# patch of the minor before (Cilium Documentation/operations/upgrade.rst at v1.20.0; cert-manager
# docs installation/upgrade). What runs is read from the workload's image tag in the cluster (state
# can be stale or lost); nothing installed yet takes any version. Read-only. Runs on a controller.
# Env: COMPONENT (its name in messages), WORKLOAD (namespace/kind/name), VERSION (the target).
set -euo pipefail
: "${COMPONENT:?COMPONENT is required}" "${WORKLOAD:?WORKLOAD is required}" "${VERSION:?VERSION is required}"
kubectl() { "$ROOT/usr/local/bin/k0s" kubectl "$@"; }
IFS=/ read -r namespace kind name <<<"$WORKLOAD"

image="$(kubectl -n "$namespace" get "$kind" "$name" --ignore-not-found \
  -o 'jsonpath={.spec.template.spec.containers[0].image}')" ||
  die "cannot read $kind $namespace/$name (is the API up? look with: k0s kubectl get --raw=/readyz)"
if [ -z "$image" ]; then
  log "$COMPONENT is not installed yet: $VERSION installs fresh"
  finish
  exit 0
fi
running="${image%@*}"
running="${running##*:}"
case "$running" in
  v[0-9]* | [0-9]*) ;;
  *) die "$COMPONENT runs image $image, whose tag names no version; check it by hand before moving to $VERSION" ;;
esac
read -r have_major have_minor <<<"$(minor_of "$running")"
read -r want_major want_minor <<<"$(minor_of "$VERSION")"
if [ "$want_major" != "$have_major" ] || [ "$want_minor" -lt "$have_minor" ]; then
  die "$COMPONENT runs $running; moving to $VERSION is not an upgrade its vendor supports (a new major, or a lower minor)"
fi
if [ "$want_minor" -gt $((have_minor + 1)) ]; then
  die "$COMPONENT runs $running; $VERSION is more than one minor ahead, and $COMPONENT upgrades one minor at a time: upgrade to $have_major.$((have_minor + 1)).x first — pin its newest $have_major.$((have_minor + 1)) release, run pulumi up, then move on to $VERSION (README: Upgrading from an earlier release)"
fi
log "$COMPONENT runs $running: $VERSION is a step its vendor supports"
finish
