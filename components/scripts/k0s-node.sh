#!/usr/bin/env bash
# Install, join or upgrade k0s on this node, then wait until it serves. Idempotent: a node that
# already runs the staged version with the same config is left alone; a new version or config
# restarts it (Pulumi runs controllers one at a time, then the workers).
# Env: ROLE (controller | worker | controller+worker), K0S_VERSION, K0S_CONFIG_B64 (controllers),
# NODE_LABELS ("k=v,k2=v2", optional), WAIT_SECONDS (default 300).
# Secret, from stdin: JOIN_TOKEN (empty on the first controller).
set -euo pipefail
: "${ROLE:?ROLE is required}" "${K0S_VERSION:?K0S_VERSION is required}"
WAIT_SECONDS="${WAIT_SECONDS:-300}"
JOIN_TOKEN="${JOIN_TOKEN:-}"
staged="$ROOT/var/lib/cluster-bootstrap/bin/k0s-$K0S_VERSION"
bin="$ROOT/usr/local/bin/k0s"
[ -x "$staged" ] || die "k0s $K0S_VERSION is not staged at ${staged#"$ROOT"}; run the Node layer first"

case "$ROLE" in
  controller | controller+worker) service=k0scontroller ;;
  worker) service=k0sworker ;;
  *) die "ROLE must be controller, worker or controller+worker, not '$ROLE'" ;;
esac

restart=0
if [ "$service" = k0scontroller ]; then
  : "${K0S_CONFIG_B64:?K0S_CONFIG_B64 is required on controllers}"
  put_file /etc/k0s/k0s.yaml 0644 < <(printf '%s' "$K0S_CONFIG_B64" | base64 -d)
  restart="$FILE_CHANGED"
fi

if ! cmp -s "$staged" "$bin" 2>/dev/null; then
  mkdir -p "$(dirname "$bin")"
  install -m 0755 "$staged" "$bin.new"
  mv -f "$bin.new" "$bin"
  log "k0s binary is now $K0S_VERSION"
  CHANGED=1
  restart=1
fi

installed=0
for unit in "/etc/systemd/system/$service.service" "/etc/init.d/$service"; do
  if [ -e "$ROOT$unit" ]; then installed=1; fi
done

if [ "$installed" = 0 ]; then
  args=()
  if [ "$service" = k0scontroller ]; then
    args+=(controller --config /etc/k0s/k0s.yaml)
    if [ "$ROLE" = controller+worker ]; then args+=(--enable-worker --no-taints); fi
  else
    args+=(worker)
  fi
  if [ -n "${NODE_LABELS:-}" ]; then args+=(--labels "$NODE_LABELS"); fi
  if [ -n "$JOIN_TOKEN" ]; then
    put_file /etc/k0s/join-token 0600 <<<"$JOIN_TOKEN"
    args+=(--token-file /etc/k0s/join-token)
  elif [ "$service" = k0sworker ]; then
    die "a worker needs JOIN_TOKEN to join"
  fi
  "$bin" install "${args[@]}"
  "$bin" start
  log "installed and started $service"
  CHANGED=1
elif [ "$restart" = 1 ]; then
  "$bin" stop || true
  "$bin" start
  log "restarted $service for the new version or config"
fi
remove_file /etc/k0s/join-token

deadline=$((SECONDS + WAIT_SECONDS))
if [ "$service" = k0scontroller ]; then
  until "$bin" kubectl get --raw=/readyz >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "the API did not answer /readyz within ${WAIT_SECONDS}s"
    sleep 5
  done
  log "API ready"
else
  until "$bin" status >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "k0s worker not running within ${WAIT_SECONDS}s"
    sleep 5
  done
  log "worker running"
fi
finish
