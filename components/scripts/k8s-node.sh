#!/usr/bin/env bash
# One node as the API sees it, run on the first controller with `k0s kubectl`:
#   ACTION=drain   before a worker's restart for ROLLOUT: cordon and drain it (k0sctl's drain options)
#                  and mark it drained for ROLLOUT; a node that runs ROLLOUT already, or has never
#                  been rolled out (it has just joined), is left alone;
#   ACTION=ready   after a join or restart: the join token invalidated; the Node registered, Ready and
#                  uncordoned if it was drained for ROLLOUT; its labels those of LABELS (labels this
#                  step set earlier and LABELS no longer names are removed); ROLLOUT recorded on it;
#   ACTION=remove  the node leaves: drain it and delete its Node, before its k0s is reset.
# Env: ACTION, NODE (Kubernetes node name; empty for a controller that runs no kubelet), ROLLOUT,
# LABELS ("k=v,k2=v2"), WAIT_SECONDS (default 600), DRAIN_TIMEOUT (default 300s). Secret, from stdin: JOIN_TOKEN.
set -euo pipefail
: "${ACTION:?ACTION is required}"
WAIT_SECONDS="${WAIT_SECONDS:-600}"
NODE="${NODE:-}"
JOIN_TOKEN="${JOIN_TOKEN:-}"
k0s() { "$ROOT/usr/local/bin/k0s" "$@"; }
kubectl() { k0s kubectl "$@"; }
ROLLOUT_KEY=cluster-bootstrap/rollout
DRAINED_KEY=cluster-bootstrap/drained-for
LABELS_KEY=cluster-bootstrap/labels
# k0sctl's drain options; DRAIN_TIMEOUT (default 300s, k0sctl's) bounds how long an eviction is retried
DRAIN=(--force --grace-period=120 "--timeout=${DRAIN_TIMEOUT:-300s}" --delete-emptydir-data --ignore-daemonsets)
deadline=$((SECONDS + WAIT_SECONDS))

annotation() { kubectl get node "$NODE" -o "jsonpath={.metadata.annotations['$1']}" 2>/dev/null || true; }
label() { kubectl get node "$NODE" -o "jsonpath={.metadata.labels['$1']}" 2>/dev/null || true; }
exists() { kubectl get node "$NODE" >/dev/null 2>&1; }
set_annotation() {
  [ "$(annotation "$1")" = "$2" ] && return 0
  kubectl annotate node "$NODE" --overwrite "$1=$2" >/dev/null
  CHANGED=1
}

# invalidate: the token this node joined with is spent (k0sctl invalidates it after the join).
invalidate() {
  local id
  [ -n "$JOIN_TOKEN" ] || return 0
  id="$(token_in "$JOIN_TOKEN" | base64 -d | gzip -dc | sed -n 's/^ *token: *\([a-z0-9]*\)\..*/\1/p' | head -n 1)"
  [ -n "$id" ] || die "cannot read the join token's id"
  if k0s token list 2>/dev/null | grep -q "^$id\b"; then
    k0s token invalidate "$id" >/dev/null
    log "invalidated join token $id"
    CHANGED=1
  fi
}

sync_labels() {
  local previous wanted key pair
  previous="$(annotation "$LABELS_KEY")"
  wanted=""
  for pair in ${LABELS//,/ }; do
    key="${pair%%=*}"
    wanted="$wanted,$key"
    if [ -z "${pair#*=}" ] || [ "$(label "$key")" != "${pair#*=}" ]; then  # (empty: unset or set?)
      kubectl label node "$NODE" --overwrite "$pair" >/dev/null
      log "set label $pair"
      CHANGED=1
    fi
  done
  for key in ${previous//,/ }; do
    case ",$wanted," in *",$key,"*) ;; *)
      kubectl label node "$NODE" "$key-" >/dev/null
      log "removed label $key"
      CHANGED=1 ;;
    esac
  done
  set_annotation "$LABELS_KEY" "${wanted#,}"
}

case "$ACTION" in
  drain)
    : "${NODE:?NODE is required}" "${ROLLOUT:?ROLLOUT is required}"
    if ! exists; then log "node $NODE not registered yet: nothing to drain"; finish; exit 0; fi
    current="$(annotation "$ROLLOUT_KEY")"
    if [ -z "$current" ] || [ "$current" = "$ROLLOUT" ]; then finish; exit 0; fi
    kubectl cordon "$NODE" >/dev/null
    kubectl drain "$NODE" "${DRAIN[@]}" || die "could not drain $NODE; its restart is not started (look with: k0s kubectl get pods -A --field-selector spec.nodeName=$NODE)"
    set_annotation "$DRAINED_KEY" "$ROLLOUT"
    log "drained $NODE for its restart"
    CHANGED=1
    ;;
  ready)
    invalidate
    if [ -n "$NODE" ]; then
      retry_until "$deadline" "node $NODE did not register within ${WAIT_SECONDS}s" exists
      if [ "$(annotation "$DRAINED_KEY")" = "${ROLLOUT:-}" ] && [ -n "${ROLLOUT:-}" ]; then
        retry_until "$deadline" "node $NODE not Ready within ${WAIT_SECONDS}s after its restart; it stays cordoned and later batches wait (look with: k0s kubectl describe node $NODE)" \
          kubectl wait --for=condition=Ready --timeout=10s "node/$NODE"
        kubectl uncordon "$NODE" >/dev/null
        kubectl annotate node "$NODE" "$DRAINED_KEY-" >/dev/null
        log "node $NODE Ready and uncordoned"
        CHANGED=1
      fi
      sync_labels
      if [ -n "${ROLLOUT:-}" ]; then set_annotation "$ROLLOUT_KEY" "$ROLLOUT"; fi
    fi
    ;;
  remove)
    : "${NODE:?NODE is required}"
    if exists; then
      kubectl drain "$NODE" "${DRAIN[@]}" || log "warning: could not drain $NODE completely; deleting it anyway"
      kubectl delete node "$NODE" --ignore-not-found >/dev/null
      log "drained and deleted node $NODE"
      CHANGED=1
    fi
    ;;
  *) die "ACTION must be drain, ready or remove, not '$ACTION'" ;;
esac
finish
