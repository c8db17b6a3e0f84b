#!/usr/bin/env bash
# Print the admin kubeconfig with its server set to API_SERVER (https://host:6443).
# Runs on the first controller; the output is a secret (Pulumi keeps it encrypted).
set -euo pipefail
: "${API_SERVER:?API_SERVER is required}"
config="$("$ROOT/usr/local/bin/k0s" kubeconfig admin)"
case "$config" in *"server:"*) ;; *) die "k0s kubeconfig admin printed no server" ;; esac
printf '%s\n' "$config" | sed -E "s#^([[:space:]]*server:).*#\\1 $API_SERVER#"
