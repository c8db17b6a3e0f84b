#!/usr/bin/env bash
# Install or join k0s on this node, then wait until it has joined and serves. Idempotent.
# Controllers also upgrade here (Pulumi runs them one at a time): a new staged version, config or
# install arguments restart the controller. A worker that has joined is left running: its restarts
# are k0s-rollout.sh's, after its Node has been drained.
#
# The join token file outlives `k0s start`, which returns as soon as systemd has started the unit:
# k0s reads the file later in its start-up (a controller before it joins etcd, a worker when it
# bootstraps the kubelet's certificate), and again after every crash until it has joined. Once
# this node has joined, the file is overwritten with a token that parses but grants nothing: k0s
# v1.35.1 parses it on every worker start (k0s #7202), and a missing file fails that start.
# Env: ROLE (controller | worker | controller+worker), K0S_VERSION, K0S_CONFIG_B64 (controllers),
# FIRST (true on the first controller in nodes: it creates the cluster if there is none), PEERS (the
# other controllers' addresses, on the first), KUBELET_NODE_IP (optional),
# ROLLOUT (workers: what k0s-rollout.sh keeps them at), WAIT_SECONDS.
# TOKEN_URN (the Pulumi URN of the step that minted JOIN_TOKEN, named when it has expired).
# Secret, from stdin: JOIN_TOKEN, as k0s-token.sh prints it (empty on the first controller).
set -euo pipefail
: "${ROLE:?ROLE is required}" "${K0S_VERSION:?K0S_VERSION is required}"
WAIT_SECONDS="${WAIT_SECONDS:-300}"
expires="$(token_expiry "${JOIN_TOKEN:-}")"
JOIN_TOKEN="$(token_in "${JOIN_TOKEN:-}")"
staged="$ROOT/var/lib/cluster-bootstrap/bin/k0s-$K0S_VERSION"
bin="$ROOT/usr/local/bin/k0s"
token_file=/etc/k0s/join-token
state=/var/lib/cluster-bootstrap
[ -x "$staged" ] || die "k0s $K0S_VERSION is not staged at ${staged#"$ROOT"}; run the Node layer first"

case "$ROLE" in
  controller | controller+worker) service=k0scontroller token_user=controller-bootstrap ;;
  worker) service=k0sworker token_user=kubelet-bootstrap ;;
  *) die "ROLE must be controller, worker or controller+worker, not '$ROLE'" ;;
esac

# joined: k0s's own test of whether this node still needs its token (k0s needToJoin on
# controllers, BootstrapKubeletClientConfig on workers).
joined() {
  if [ "$service" = k0scontroller ]; then
    [ -e "$ROOT/var/lib/k0s/etcd/member/snap/db" ]
  else
    [ -e "$ROOT/var/lib/k0s/kubelet.conf" ]
  fi
}

# spent_token: a join token (base64 of a gzipped kubeconfig, as k0s decodes it) naming no cluster
# credential: what the token file holds once it has been used.
spent_token() {
  printf '%s\n' "# spent: this node has joined (written by cluster-bootstrap)" \
    "apiVersion: v1" "kind: Config" \
    "clusters: [{name: k0s, cluster: {server: 'https://127.0.0.1:6443'}}]" \
    "contexts: [{name: k0s, context: {cluster: k0s, user: $token_user}}]" \
    "current-context: k0s" \
    "users: [{name: $token_user, user: {token: abcdef.0123456789abcdef}}]" |
    gzip -n -c | base64 | tr -d '\n'
}

# The first controller creates the cluster only if it has none yet. Any member may be first (the
# one that created the cluster may have left), but a node that has not joined must not be: with
# another listed controller already serving, it would create a second cluster beside it.
if [ "${FIRST:-false}" = true ] && [ "$service" = k0scontroller ] && ! joined; then
  for peer in ${PEERS:-}; do
    host="$peer"
    case "$peer" in *:*) host="[$peer]" ;; esac  # IPv6
    # any HTTP answer, even 401, is an API server
    code="$(curl -sk -o /dev/null -w '%{http_code}' --connect-timeout 5 --max-time 10 "https://$host:6443/readyz" || true)"
    if [ -n "$code" ] && [ "$code" != 000 ]; then
      die "a cluster already runs on $peer, and this node is not a member: as the first controller in nodes it would create a second cluster. Put a controller that is a member first in nodes; a new controller joins from any later place (README: Adding, removing and changing nodes)"
    fi
  done
fi

refuse_downgrade "$bin" "$K0S_VERSION"
installed=0
for unit in "/etc/systemd/system/$service.service" "/etc/init.d/$service"; do
  if [ -e "$ROOT$unit" ]; then installed=1; fi
done
if [ "$service" = k0sworker ] && [ "$installed" = 1 ] && joined; then
  log "worker joined; restarts are k0s-rollout.sh's"
  if [ -e "$ROOT$token_file" ]; then put_file "$token_file" 0600 < <(spent_token); fi
  if ! "$bin" status >/dev/null 2>&1; then
    "$bin" start >/dev/null 2>&1 || true  # stopped by hand: started again, as it was installed
  fi
  finish
  exit 0
fi

restart=0
if [ "$service" = k0scontroller ]; then
  : "${K0S_CONFIG_B64:?K0S_CONFIG_B64 is required on controllers}"
  put_file /etc/k0s/k0s.yaml 0644 < <(printf '%s' "$K0S_CONFIG_B64" | base64 -d)
  restart="$FILE_CHANGED"
fi
# The registry drop-in follows the containerd of K0S_VERSION. It is written only while k0s is
# stopped: k0s 1.35.1 and later watch containerd.d and restart their containerd on any change
# (pkg/component/worker/containerd), so a running older k0s would load the new version's file.
dropin=/etc/k0s/containerd.d/cluster-bootstrap-registries.toml
if ! registry_dropin "$K0S_VERSION" | cmp -s - "$ROOT$dropin"; then restart=1; fi

if ! cmp -s "$staged" "$bin" 2>/dev/null; then
  mkdir -p "$(dirname "$bin")"
  install -m 0755 "$staged" "$bin.new"
  mv -f "$bin.new" "$bin"
  log "k0s binary is now $K0S_VERSION"
  CHANGED=1
  restart=1
fi

# A node that has not joined yet gets the token (again: after a failed or interrupted run the
# file may hold an expired one, or a spent one). Pulumi keeps the token it minted for this node: a
# join retried after its expiry needs a new one, which only replacing that step mints.
if [ -n "$JOIN_TOKEN" ] && ! joined; then
  if [ -n "$expires" ] && [ "$(date +%s)" -ge "$expires" ]; then
    die "this node's join token expired unused at $(date -u -d "@$expires" '+%Y-%m-%d %H:%M UTC' 2>/dev/null || echo "$expires") (its join failed and is retried too late); mint a new one with: pulumi up --replace '${TOKEN_URN:-<the k0s-<node>-token step>}'"
  fi
  put_file "$token_file" 0600 <<<"$JOIN_TOKEN"
fi

JOINS=false
if [ -n "$JOIN_TOKEN" ] || [ -e "$ROOT$token_file" ]; then JOINS=true; fi
if [ "$service" = k0sworker ] && [ "$JOINS" = false ]; then die "a worker needs JOIN_TOKEN to join"; fi
mapfile -t args < <(JOINS="$JOINS" install_args "$ROLE")
if [ "$installed" = 0 ]; then
  put_file "$dropin" 0644 < <(registry_dropin "$K0S_VERSION")
  "$bin" install "${args[@]}"
  "$bin" start
  log "installed and started $service"
  CHANGED=1
else
  # install arguments (the node IP) changed: reinstall the service over the old one, as k0sctl
  # does (a node installed before they were recorded keeps its service)
  if [ -e "$ROOT$state/k0s-install-args" ] && ! printf '%s\n' "${args[@]}" | cmp -s - "$ROOT$state/k0s-install-args"; then
    "$bin" install "${args[@]}" --force
    log "reinstalled $service with new arguments"
    CHANGED=1
    restart=1
  fi
  if [ "$restart" = 1 ] || { [ -n "$JOIN_TOKEN" ] && ! joined; }; then
    "$bin" stop >/dev/null 2>&1 || true
    put_file "$dropin" 0644 < <(registry_dropin "$K0S_VERSION")
    "$bin" start
    log "restarted $service (new version, config or arguments, or not joined yet)"
    CHANGED=1
  elif ! "$bin" status >/dev/null 2>&1; then
    # stopped by hand, or between two restarts of a failing unit: ask systemd to start it now
    "$bin" start >/dev/null 2>&1 || true
  fi
fi
put_file "$state/k0s-install-args" 0644 < <(printf '%s\n' "${args[@]}")

# ready: the API answers on this controller, or the worker runs; and a joining node has joined.
ready() {
  if [ "$service" = k0scontroller ]; then
    "$bin" kubectl get --raw=/readyz >/dev/null 2>&1 || return 1
  else
    "$bin" status >/dev/null 2>&1 || return 1
  fi
  [ -z "$JOIN_TOKEN" ] || joined
}
deadline=$((SECONDS + WAIT_SECONDS))
retry_until "$deadline" "$service has not joined and served within ${WAIT_SECONDS}s; see: journalctl -u $service" ready
log "$service joined and serving"

if [ -e "$ROOT$token_file" ]; then
  put_file "$token_file" 0600 < <(spent_token)
fi
if [ -n "${ROLLOUT:-}" ]; then put_file "$state/k0s-rollout" 0644 <<<"$ROLLOUT"; fi
finish
