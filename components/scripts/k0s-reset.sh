#!/usr/bin/env bash
# Stop and reset k0s on this node (pulumi destroy); a node without k0s is left as it is.
# Env: K0S_VERSION (staged binary to remove), REBOOT (true to reboot a minute later).
set -euo pipefail
bin="$ROOT/usr/local/bin/k0s"
if [ -x "$bin" ]; then
  "$bin" stop >/dev/null 2>&1 || true
  "$bin" reset
  log "k0s reset"
  remove_file /usr/local/bin/k0s
  CHANGED=1
else
  log "k0s is not installed; nothing to reset"
fi
remove_file /etc/k0s/k0s.yaml
remove_file /etc/k0s/join-token
if [ -n "${K0S_VERSION:-}" ]; then
  remove_file "/var/lib/cluster-bootstrap/bin/k0s-$K0S_VERSION"
  remove_file "/var/lib/cluster-bootstrap/bin/k0s-$K0S_VERSION.sha256"
fi
if [ "${REBOOT:-false}" = true ] && [ "$CHANGED" = 1 ]; then
  shutdown -r +1 "cluster-bootstrap: reboot after k0s reset" >/dev/null 2>&1 || die "could not schedule a reboot"
  log "reboot scheduled in one minute"
fi
finish
