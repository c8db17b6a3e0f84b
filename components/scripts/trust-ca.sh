#!/usr/bin/env bash
# Trust the stack's internal CA: the host trust store, and containerd for the in-cluster registry
# REGISTRY_HOST (a hosts.toml under /etc/k0s/containerd.d/certs.d, the format containerd 1.7 and
# 2.x both read; the drop-in pointing containerd there depends on the k0s version, so the step that
# starts k0s writes it).
# Env: CA_CERT_B64 (PEM, base64), REGISTRY_HOST, ACTION (apply | remove).
set -euo pipefail
: "${REGISTRY_HOST:?REGISTRY_HOST is required}"
ACTION="${ACTION:-apply}"

if command -v update-ca-certificates >/dev/null 2>&1; then
  anchor=/usr/local/share/ca-certificates/cluster-bootstrap-ca.crt
  refresh=(update-ca-certificates)
elif command -v update-ca-trust >/dev/null 2>&1; then
  anchor=/etc/pki/ca-trust/source/anchors/cluster-bootstrap-ca.crt
  refresh=(update-ca-trust extract)
else
  die "no trust store tool found (update-ca-certificates or update-ca-trust)"
fi
certs_d=/etc/k0s/containerd.d/certs.d
registry_dir="$certs_d/$REGISTRY_HOST"

if [ "$ACTION" = remove ]; then
  if [ -e "$ROOT$anchor" ]; then
    remove_file "$anchor"
    "${refresh[@]}" >/dev/null
  fi
  remove_file "$registry_dir/hosts.toml"
  remove_file "$registry_dir/ca.crt"
  remove_file /etc/k0s/containerd.d/cluster-bootstrap-registries.toml  # written here before k0s-node.sh did
  finish
  exit 0
fi

: "${CA_CERT_B64:?CA_CERT_B64 is required}"
pem="$(printf '%s' "$CA_CERT_B64" | base64 -d)"
case "$pem" in
  *"-----BEGIN CERTIFICATE-----"*) ;;
  *) die "CA_CERT_B64 does not hold a PEM certificate" ;;
esac

put_file "$anchor" 0644 <<<"$pem"
if [ "$FILE_CHANGED" = 1 ]; then
  "${refresh[@]}" >/dev/null
fi

put_file "$registry_dir/ca.crt" 0644 <<<"$pem"
put_file "$registry_dir/hosts.toml" 0644 <<TOML
server = "https://$REGISTRY_HOST"

[host."https://$REGISTRY_HOST"]
  capabilities = ["pull", "resolve", "push"]
  ca = "$registry_dir/ca.crt"
TOML
finish
