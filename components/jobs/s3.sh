#!/bin/sh
# S3 requests with curl's own SigV4 signing: no AWS CLI in the image or on the host. POSIX sh:
# joined in front of the in-cluster jobs (busybox sh) and of host scripts (bash).
# curl 7.87 or later is needed: `--aws-sigv4` exists from 7.75, but until 7.86 curl signs only
# host and x-amz-date (a caller's x-amz-* headers go unsigned) and until 7.87 it hashes the body
# itself, ignoring a caller's x-amz-content-sha256 (curl lib/http_aws_sigv4.c, curl-7_81_0 vs
# curl-7_87_0) — S3 then refuses the signature.
# Env: S3_URL (the bucket's base URL, https://<bucket>.s3.<region>.amazonaws.com), S3_REGION,
# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY. Call s3_init DIR (a private directory) first.

s3_die() { printf 's3: error: %s\n' "$*" >&2; exit 1; }

# s3_curl_version: this curl's version (7.81.0); s3_curl_signs: true when it is 7.87.0 or later.
s3_curl_version() { curl --version 2>/dev/null | sed -n '1s/^curl \([0-9][0-9.]*\).*/\1/p'; }
s3_curl_signs() {
  s3_curl_version | awk -F. '{ exit !($1 > 7 || ($1 == 7 && $2 >= 87)) }'
}

# s3_init DIR: the credentials go to a curl config file there, never on a command line.
s3_init() {
  : "${S3_URL:?S3_URL is required}" "${S3_REGION:?S3_REGION is required}"
  : "${AWS_ACCESS_KEY_ID:?AWS_ACCESS_KEY_ID is required}" "${AWS_SECRET_ACCESS_KEY:?AWS_SECRET_ACCESS_KEY is required}"
  s3_curl_signs ||
    s3_die "curl $(s3_curl_version) on $(hostname 2>/dev/null || echo this host) cannot sign S3 requests (curl 7.87 or later is needed)"
  S3_DIR=$1
  (umask 077 && printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$S3_DIR/s3.curlrc")
}

# s3_request METHOD KEY [FILE [HEADER...]]: sends FILE as the body when given, with the extra
# request HEADERs ("x-amz-meta-name: value"; curl signs a caller's headers from 7.86). The response
# body is in $S3_DIR/s3.body, its headers in $S3_DIR/s3.headers, the HTTP status in $s3_status
# (000: no answer). The payload is declared UNSIGNED-PAYLOAD, which S3 accepts over TLS; older curl
# (before 8) sends no such header itself and then signs a hash S3 never sees.
s3_request() {
  s3_method=$1 s3_key=$2
  shift 2
  if [ "$#" -ge 1 ]; then
    s3_file=$1
    shift
    for s3_header in "$@"; do
      set -- "$@" -H "$s3_header"
      shift
    done
    set -- -T "$s3_file" "$@"
  fi
  s3_status=$(curl -sS -o "$S3_DIR/s3.body" -D "$S3_DIR/s3.headers" -w '%{http_code}' -X "$s3_method" "$@" \
    -K "$S3_DIR/s3.curlrc" --aws-sigv4 "aws:amz:$S3_REGION:s3" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
    "$S3_URL/$s3_key") || true
  s3_status=${s3_status:-000}
}

# s3_meta NAME: the x-amz-meta-NAME of the last response (empty when it has none).
s3_meta() {
  tr -d '\r' <"$S3_DIR/s3.headers" 2>/dev/null |
    awk -v name="x-amz-meta-$1:" 'tolower($1) == name { sub(/^[^:]*: */, ""); value = $0 } END { print value }'
}

s3_error() { sed -n 's/.*<Code>\([^<]*\)<\/Code>.*/\1/p' "$S3_DIR/s3.body" 2>/dev/null | head -n 1; }

# s3_get KEY FILE: true when the object was there (now in FILE), false when it is not.
s3_get() {
  s3_request GET "$1"
  case "$s3_status" in
    200) mv -f "$S3_DIR/s3.body" "$2" ;;
    404) return 1 ;;
    *) s3_die "reading s3 object $1: HTTP $s3_status $(s3_error)" ;;
  esac
}

# s3_put KEY FILE [HEADER...]
s3_put() {
  s3_request PUT "$@"
  [ "$s3_status" = 200 ] || s3_die "writing s3 object $1: HTTP $s3_status $(s3_error)"
}

# s3_keys PREFIX: the keys under PREFIX, one a line (ListObjectsV2, up to 1000 keys: enough for the
# backups retention keeps; more fails rather than answering from a partial list).
s3_keys() {
  s3_request GET "?list-type=2&prefix=$1"
  [ "$s3_status" = 200 ] || s3_die "listing s3 objects under $1: HTTP $s3_status $(s3_error)"
  ! grep -q '<IsTruncated>true</IsTruncated>' "$S3_DIR/s3.body" || s3_die "more than 1000 objects under $1"
  sed 's/<Key>/\n<Key>/g' "$S3_DIR/s3.body" | sed -n 's/^<Key>\([^<]*\)<\/Key>.*/\1/p'
}

# s3_get_sealed KEY FILE SETTING: the age file KEY, decrypted with $AGE_IDENTITY (the stack's
# identity) into FILE; nothing of it or the identity stays in $S3_DIR. SETTING (the config key that
# asked for it) names what failed. Needs age.
s3_get_sealed() {
  command -v age >/dev/null 2>&1 || s3_die "age is not installed (apt-get install age; dnf install age)"
  s3_get "$1" "$S3_DIR/sealed.age" || s3_die "$3: the backup bucket holds no object $1"
  (umask 077 && printf '%s\n' "$AGE_IDENTITY" >"$S3_DIR/identity")
  if ! age -d -i "$S3_DIR/identity" -o "$2" "$S3_DIR/sealed.age"; then
    rm -f "$S3_DIR/sealed.age" "$S3_DIR/identity"
    s3_die "could not decrypt $1 with the stack's age identity (sops.ageKey): was it encrypted to another?"
  fi
  rm -f "$S3_DIR/sealed.age" "$S3_DIR/identity"
}
