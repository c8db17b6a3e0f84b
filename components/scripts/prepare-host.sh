#!/usr/bin/env bash
# Prepare a host for k0s and Cilium: supported OS, required tools, kernel modules, sysctls,
# host name, and a directory the SSH user may upload to (airgap).
# Env: NODE_NAME, UPLOAD_DIR, UPLOAD_OWNER, CURL_SIGV4 (true: a later step signs S3 requests here,
# and encrypts or decrypts backups with age).
# uses: ../jobs/s3.sh
set -euo pipefail
: "${NODE_NAME:?NODE_NAME is required}" "${UPLOAD_DIR:?UPLOAD_DIR is required}"

[ -r "$ROOT/etc/os-release" ] || die "cannot read /etc/os-release; supported: Debian, Ubuntu, RHEL family, Fedora"
# shellcheck disable=SC1091  # the host's file, read at run time
os="$(. "$ROOT/etc/os-release" && echo "${ID:-unknown} ${ID_LIKE:-}")"
case " $os " in
  *" debian "* | *" ubuntu "* | *" rhel "* | *" fedora "* | *" centos "* | *" rocky "* | *" almalinux "*) ;;
  *) die "unsupported OS '${os% }'; supported: Debian, Ubuntu, RHEL family (RHEL, Rocky, Alma, CentOS), Fedora" ;;
esac

# k0s 1.36 refuses cgroup v1 in its pre-flight checks (internal/pkg/sysinfo at v1.36.1+k0s.0)
[ -e "$ROOT/sys/fs/cgroup/cgroup.controllers" ] ||
  die "host $NODE_NAME uses cgroup v1 (no /sys/fs/cgroup/cgroup.controllers); k0s 1.36 needs cgroup v2: boot with systemd.unified_cgroup_hierarchy=1 (the default on Debian 12 and Ubuntu 22.04 and later)"

missing=""
for tool in curl sha256sum base64 gzip modprobe sysctl ip; do
  command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
[ -z "$missing" ] || die "required tools missing:$missing"
if [ "${CURL_SIGV4:-false}" = true ] && ! s3_curl_signs; then
  die "host $NODE_NAME: curl $(s3_curl_version) cannot sign S3 requests, which the backup restore and etcd backup steps on controllers do (curl 7.87 or later is needed: Debian 12 has 7.88, Ubuntu 24.04 8.5; Ubuntu 22.04's 7.81 and RHEL 9's 7.76 sign too little); upgrade curl there, or set backup.enabled: false"
fi
if [ "${CURL_SIGV4:-false}" = true ] && ! command -v age >/dev/null 2>&1; then
  die "host $NODE_NAME: age is not installed; the controllers' backup timer encrypts etcd and Gitea backups with it and the restore steps decrypt them: apt-get install age (Debian 12, Ubuntu 24.04) or dnf install age (Fedora, EPEL); or set backup.enabled: false"
fi

# Kernel modules: overlay for containerd, br_netfilter for bridged traffic rules.
put_file /etc/modules-load.d/cluster-bootstrap.conf 0644 <<'CONF'
overlay
br_netfilter
CONF
for module in overlay br_netfilter; do
  if [ ! -d "$ROOT/sys/module/$module" ]; then
    modprobe "$module"
    log "loaded kernel module $module"
    CHANGED=1
  fi
done

# Forwarding for pod traffic; inotify limits for many watching pods. With forwarding on, the
# kernel drops routes learned from router advertisements unless the interface has accept_ra = 2
# (Documentation/networking/ip-sysctl.rst: accept_ra, forwarding; `all` is not applied to
# existing interfaces): an interface whose IPv6 default route came by SLAAC keeps it, set first.
sysctls() {
  local dev
  for dev in $(ip -6 route show default 2>/dev/null | awk '/ proto ra / { for (i = 1; i < NF; i++) if ($i == "dev") print $(i + 1) }' | sort -u); do
    echo "net.ipv6.conf.$dev.accept_ra = 2"
  done
  printf '%s\n' "net.ipv4.ip_forward = 1" "net.ipv6.conf.all.forwarding = 1" \
    "net.bridge.bridge-nf-call-iptables = 1" "net.bridge.bridge-nf-call-ip6tables = 1" \
    "fs.inotify.max_user_instances = 8192" "fs.inotify.max_user_watches = 524288"
}
put_file /etc/sysctl.d/90-cluster-bootstrap.conf 0644 < <(sysctls)
if [ "$FILE_CHANGED" = 1 ]; then
  sysctl --system >/dev/null
fi

if [ "$(hostname)" != "$NODE_NAME" ]; then
  hostnamectl set-hostname "$NODE_NAME"
  log "host name set to $NODE_NAME"
  CHANGED=1
fi
if [ ! -d "$ROOT$UPLOAD_DIR" ]; then
  mkdir -p "$ROOT$UPLOAD_DIR"
  chmod 0700 "$ROOT$UPLOAD_DIR"
  CHANGED=1
fi
if [ -n "${UPLOAD_OWNER:-}" ] && [ "$(stat -c %U "$ROOT$UPLOAD_DIR")" != "$UPLOAD_OWNER" ]; then
  chown "$UPLOAD_OWNER" "$ROOT$UPLOAD_DIR"
  CHANGED=1
fi
finish
