#!/usr/bin/env bash
# Wait, on a controller with `k0s kubectl`, until the cluster really serves what a layer installed;
# for releases Helm does not wait on. Read-only: it changes nothing, so it is safe to run again.
# Env (each optional, space-separated lists):
#   ROLLOUTS     kind/namespace/name of DaemonSets, Deployments, StatefulSets fully rolled out
#   CRDS         CustomResourceDefinitions that must be Established
#   NODES        nodes that must be Ready
#   LB_SERVICE   namespace/name=IP: a LoadBalancer Service holding that address
#   LEASE        namespace/name of a Lease that must have a holder (e.g. an L2 announcement)
#   READY        kind/namespace/name of objects whose Ready condition must be True (Flux's); when
#                the deadline passes, their own Ready message says why not
#   WAIT_SECONDS overall deadline (default 600)
set -euo pipefail
WAIT_SECONDS="${WAIT_SECONDS:-600}"
deadline=$((SECONDS + WAIT_SECONDS))
kubectl() { "$ROOT/usr/local/bin/k0s" kubectl "$@"; }

# until_ok WHAT HINT CMD...: retry CMD until it succeeds; past the deadline, fail naming WHAT and HINT.
until_ok() {
  local what="$1" hint="$2"
  shift 2
  retry_until "$deadline" "$what not ready after ${WAIT_SECONDS}s; look with: k0s kubectl $hint" "$@"
  log "$what ready"
}

lb_has_ip() {  # lb_has_ip NAMESPACE NAME IP
  local ips
  ips="$(kubectl -n "$1" get service "$2" -o 'jsonpath={.status.loadBalancer.ingress[*].ip}')"
  case " $ips " in *" $3 "*) return 0 ;; *) return 1 ;; esac
}

ready_message() {  # ready_message KIND NAMESPACE NAME: what the object says about its Ready condition
  kubectl -n "$2" get "$1" "$3" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].message}' 2>/dev/null || true
}

lease_held() {  # lease_held NAMESPACE NAME
  [ -n "$(kubectl -n "$1" get lease "$2" -o 'jsonpath={.spec.holderIdentity}')" ]
}

for item in ${ROLLOUTS:-}; do
  IFS=/ read -r kind namespace name <<<"$item"
  until_ok "$kind $namespace/$name" "-n $namespace describe $kind $name" \
    kubectl -n "$namespace" rollout status "$kind/$name" --timeout=10s
done
for crd in ${CRDS:-}; do
  until_ok "CRD $crd" "get crd $crd" \
    kubectl wait --for=condition=Established --timeout=10s "crd/$crd"
done
for node in ${NODES:-}; do
  until_ok "node $node" "describe node $node" \
    kubectl wait --for=condition=Ready --timeout=10s "node/$node"
done
if [ -n "${LB_SERVICE:-}" ]; then
  service="${LB_SERVICE%%=*}"
  until_ok "LoadBalancer $service at ${LB_SERVICE#*=}" "-n ${service%%/*} describe service ${service#*/}" \
    lb_has_ip "${service%%/*}" "${service#*/}" "${LB_SERVICE#*=}"
fi
if [ -n "${LEASE:-}" ]; then
  until_ok "lease ${LEASE}" "-n ${LEASE%%/*} get lease ${LEASE#*/} -o yaml" \
    lease_held "${LEASE%%/*}" "${LEASE#*/}"
fi
for item in ${READY:-}; do
  IFS=/ read -r kind namespace name <<<"$item"
  until kubectl -n "$namespace" wait --for=condition=Ready --timeout=10s "$kind/$name" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      why="$(ready_message "$kind" "$namespace" "$name")"
      die "$kind $namespace/$name not ready after ${WAIT_SECONDS}s: ${why:-no status yet}; look with: k0s kubectl -n $namespace describe $kind $name"
    fi
    sleep 2
  done
  log "$kind $namespace/$name ready"
done
finish
