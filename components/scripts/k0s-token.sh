#!/usr/bin/env bash
# Print a join token for TOKEN_ROLE (worker | controller) that expires after TOKEN_EXPIRY.
# Runs on the first controller; the output is a secret (Pulumi keeps it encrypted).
set -euo pipefail
: "${TOKEN_ROLE:?TOKEN_ROLE is required}"
case "$TOKEN_ROLE" in worker | controller) ;; *) die "TOKEN_ROLE must be worker or controller" ;; esac
"$ROOT/usr/local/bin/k0s" token create --role="$TOKEN_ROLE" --expiry="${TOKEN_EXPIRY:-2h}"
