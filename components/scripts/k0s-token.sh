#!/usr/bin/env bash
# Mint a join token for NODE, of TOKEN_ROLE (worker | controller), valid TOKEN_EXPIRY_SECONDS.
# Prints "expires=<unix time>" and then the token: the joining node can tell an expired token (a
# failed join retried too late) from a refused one. Runs on the first controller; the output is a
# secret (Pulumi keeps it encrypted).
set -euo pipefail
: "${TOKEN_ROLE:?TOKEN_ROLE is required}" "${TOKEN_EXPIRY_SECONDS:?TOKEN_EXPIRY_SECONDS is required}"
case "$TOKEN_ROLE" in worker | controller) ;; *) die "TOKEN_ROLE must be worker or controller" ;; esac
expires=$(($(date +%s) + TOKEN_EXPIRY_SECONDS))
token="$("$ROOT/usr/local/bin/k0s" token create --role="$TOKEN_ROLE" --expiry="${TOKEN_EXPIRY_SECONDS}s")"
printf 'expires=%s\n%s\n' "$expires" "$token"
