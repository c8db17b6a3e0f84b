#!/usr/bin/env bash
# Print a kubeconfig for ADMIN_USER (group system:masters) with a client certificate the cluster CA
# signs now, valid for a year: a fresh one whenever RENEWAL changes (the program changes it only
# when the current certificate nears its expiry: stacks/renewal.py). The program points it at the
# API endpoint (and proxy). Runs on the first controller; the output is a secret (Pulumi keeps it
# encrypted). Env: ADMIN_USER, RENEWAL (only its change matters).
set -euo pipefail
: "${ADMIN_USER:?ADMIN_USER is required}"
config="$("$ROOT/usr/local/bin/k0s" kubeconfig create "$ADMIN_USER" --groups system:masters \
  --certificate-expires-after 8760h)"
case "$config" in *"server:"*) ;; *) die "k0s kubeconfig create printed no server" ;; esac
printf '%s\n' "$config"
