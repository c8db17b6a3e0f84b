#!/usr/bin/env bash
# Install (or, ACTION=remove, take away) the systemd timer that backs up etcd, the cluster PKI and
# Gitea from this controller on SCHEDULE (OnCalendar, UTC): etcd-backup.sh, delivered as PROGRAM_B64.
# Env: NODE_NAME, SCHEDULE, AGE_RECIPIENT, S3_URL, S3_REGION, PROGRAM_B64, ACTION (install | remove);
# GITEA_NAMESPACE, GITEA_SELECTOR, GITEA_CONTAINER (Gitea's pods, which the program also dumps).
# Secret, from stdin: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (kept in a root-only EnvironmentFile).
# curl 7.87 or later, which the program's S3 requests need, is checked on every controller by host
# preparation (prepare-host.sh, CURL_SIGV4), and again by each run (s3_init).
set -euo pipefail
unit=cluster-bootstrap-etcd-backup
program=/usr/local/lib/cluster-bootstrap/etcd-backup.sh
envfile=/etc/cluster-bootstrap/etcd-backup.env

if [ "${ACTION:-install}" = remove ]; then
  if [ -e "$ROOT/etc/systemd/system/$unit.timer" ]; then
    systemctl disable --now "$unit.timer" >/dev/null 2>&1 || true
  fi
  for f in "/etc/systemd/system/$unit.timer" "/etc/systemd/system/$unit.service" "$program" "$envfile"; do
    remove_file "$f"
  done
  if [ "$CHANGED" = 1 ]; then systemctl daemon-reload; fi
  finish
  exit 0
fi

: "${NODE_NAME:?NODE_NAME is required}" "${SCHEDULE:?SCHEDULE is required}" "${AGE_RECIPIENT:?AGE_RECIPIENT is required}"
: "${S3_URL:?S3_URL is required}" "${S3_REGION:?S3_REGION is required}" "${PROGRAM_B64:?PROGRAM_B64 is required}"
: "${AWS_ACCESS_KEY_ID:?AWS_ACCESS_KEY_ID is required}" "${AWS_SECRET_ACCESS_KEY:?AWS_SECRET_ACCESS_KEY is required}"
command -v age >/dev/null 2>&1 ||
  die "host $NODE_NAME: the etcd backup encrypts with age, which is not installed: apt-get install age (Debian 12, Ubuntu 24.04) or dnf install age (Fedora, EPEL); or set backup.enabled: false"

put_file "$program" 0700 < <(printf '%s' "$PROGRAM_B64" | base64 -d)
put_file "$envfile" 0600 < <(printf '%s=%s\n' NODE_NAME "$NODE_NAME" AGE_RECIPIENT "$AGE_RECIPIENT" \
  S3_URL "$S3_URL" S3_REGION "$S3_REGION" AWS_ACCESS_KEY_ID "$AWS_ACCESS_KEY_ID" \
  AWS_SECRET_ACCESS_KEY "$AWS_SECRET_ACCESS_KEY" GITEA_NAMESPACE "${GITEA_NAMESPACE:-}" \
  GITEA_SELECTOR "${GITEA_SELECTOR:-}" GITEA_CONTAINER "${GITEA_CONTAINER:-}")
units=0
put_file "/etc/systemd/system/$unit.service" 0644 <<UNIT
[Unit]
Description=cluster-bootstrap: back up etcd, the cluster PKI and Gitea to the backup bucket
After=k0scontroller.service

[Service]
Type=oneshot
EnvironmentFile=$envfile
ExecStart=/bin/bash $program
UNIT
units=$((units + FILE_CHANGED))
put_file "/etc/systemd/system/$unit.timer" 0644 <<UNIT
[Unit]
Description=cluster-bootstrap: etcd and PKI backup on a schedule

[Timer]
OnCalendar=$SCHEDULE UTC
Persistent=true
RandomizedDelaySec=300

[Install]
WantedBy=timers.target
UNIT
units=$((units + FILE_CHANGED))
if [ "$units" -gt 0 ]; then
  systemctl daemon-reload
  systemctl enable --now "$unit.timer" >/dev/null
  log "timer $unit.timer enabled ($SCHEDULE UTC)"
fi
finish
