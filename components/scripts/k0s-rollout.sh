#!/usr/bin/env bash
# Bring a joined worker to ROLLOUT: the staged k0s version, node-local load balancing as the
# cluster has it, its kubelet's node IP. Runs after the node was drained (k8s-node.sh ACTION=drain)
# and before it is uncordoned (ACTION=ready). A worker already at ROLLOUT is left alone; otherwise
# the binary is swapped, k0s stopped, the containerd registry drop-in rewritten for that version,
# the service reinstalled when its arguments changed (--force, as k0sctl does), and k0s started. Refuses to
# downgrade. Env: K0S_VERSION, ROLLOUT, KUBELET_NODE_IP, WAIT_SECONDS (default 300).
set -euo pipefail
: "${K0S_VERSION:?K0S_VERSION is required}" "${ROLLOUT:?ROLLOUT is required}"
WAIT_SECONDS="${WAIT_SECONDS:-300}"
staged="$ROOT/var/lib/cluster-bootstrap/bin/k0s-$K0S_VERSION"
bin="$ROOT/usr/local/bin/k0s"
state=/var/lib/cluster-bootstrap
[ -x "$staged" ] || die "k0s $K0S_VERSION is not staged at ${staged#"$ROOT"}; run the Node layer first"
[ -e "$ROOT/etc/systemd/system/k0sworker.service" ] || die "k0s is not installed here; the join step installs it"

if [ "$(cat "$ROOT$state/k0s-rollout" 2>/dev/null)" = "$ROLLOUT" ] && cmp -s "$staged" "$bin"; then
  log "already at this rollout"
  finish
  exit 0
fi

refuse_downgrade "$bin" "$K0S_VERSION"
if ! cmp -s "$staged" "$bin"; then
  install -m 0755 "$staged" "$bin.new"
  mv -f "$bin.new" "$bin"
  log "k0s binary is now $K0S_VERSION"
fi
# Stopped before the drop-in is written: k0s 1.35.1 and later restart their containerd on any
# change in containerd.d, and the old k0s's containerd cannot read the new version's format.
"$bin" stop >/dev/null 2>&1 || true
put_file /etc/k0s/containerd.d/cluster-bootstrap-registries.toml 0644 < <(registry_dropin "$K0S_VERSION")
mapfile -t args < <(JOINS=true install_args worker)
if ! printf '%s\n' "${args[@]}" | cmp -s - "$ROOT$state/k0s-install-args"; then
  "$bin" install "${args[@]}" --force
  put_file "$state/k0s-install-args" 0644 < <(printf '%s\n' "${args[@]}")
  log "reinstalled k0sworker with new arguments"
fi
"$bin" start
deadline=$((SECONDS + WAIT_SECONDS))
retry_until "$deadline" "k0sworker not running within ${WAIT_SECONDS}s after its restart; see: journalctl -u k0sworker" \
  "$bin" status
put_file "$state/k0s-rollout" 0644 <<<"$ROLLOUT"
log "restarted k0sworker at this rollout"
CHANGED=1
finish
