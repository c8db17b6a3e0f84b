#!/usr/bin/env bash
# Print k0s's admin kubeconfig as it is; the program points it at the API endpoint (and proxy).
# Runs on the first controller; the output is a secret (Pulumi keeps it encrypted).
set -euo pipefail
config="$("$ROOT/usr/local/bin/k0s" kubeconfig admin)"
case "$config" in *"server:"*) ;; *) die "k0s kubeconfig admin printed no server" ;; esac
printf '%s\n' "$config"
