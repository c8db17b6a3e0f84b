#!/usr/bin/env bash
# Take k0s off this node (the node leaves the stack, or pulumi destroy); a node without k0s is left
# as it is. A controller first leaves etcd while its etcd still runs (`k0s etcd leave` talks to the
# local member), unless it is the last member; then k0s stops and resets, and what Cilium left on
# the host is removed as `cilium-dbg cleanup` would (CNI config, cilium_/lxc links, cilium-
# namespaces, its cgroup mount, state directories, BPF maps); programs still attached in the
# kernel go with the next reboot (REBOOT=true schedules one).
# Env: ROLE, REBOOT (true to reboot a minute later). Every staged k0s binary goes too.
set -euo pipefail
bin="$ROOT/usr/local/bin/k0s"

leave_etcd() {
  local list members
  if ! list="$("$bin" etcd member-list 2>&1)"; then
    # k0s not running here: as k0sctl, go on; the member stays in etcd until removed by hand
    log "warning: cannot reach this node's etcd ($list); if it is still a member, run on another controller: k0s etcd leave --peer-address <this node's address>"
    return 0
  fi
  members="$(printf '%s' "$list" | grep -o 'https://[^"]*:2380' | wc -l)"
  if [ "$members" -gt 1 ]; then
    "$bin" etcd leave || die "could not leave etcd; the cluster would keep a dead member (look with: k0s etcd member-list)"
    log "left etcd"
  else
    log "last etcd member: nothing to leave"
  fi
}

cilium_cleanup() {
  local f link ns
  for f in 10-cilium-cni.conf 00-cilium-cni.conf 05-cilium-cni.conf 05-cilium.conf 05-cilium.conflist; do
    remove_file "/etc/cni/net.d/$f"
  done
  for f in "$ROOT"/etc/cni/net.d/*.cilium_bak; do
    if [ -e "$f" ]; then mv -f "$f" "${f%.cilium_bak}"; CHANGED=1; fi
  done
  if command -v ip >/dev/null 2>&1; then
    for link in $(ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
      case "$link" in
        cilium_* | lxc?????) ip link delete "$link" && { log "deleted link $link"; CHANGED=1; } ;;
      esac
    done
    for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }'); do
      case "$ns" in cilium-*) ip netns delete "$ns" && { log "deleted netns $ns"; CHANGED=1; } ;; esac
    done
  fi
  if [ -d "$ROOT/run/cilium/cgroupv2" ] && grep -q " $ROOT/run/cilium/cgroupv2 " /proc/mounts 2>/dev/null; then
    umount "$ROOT/run/cilium/cgroupv2" && CHANGED=1
  fi
  for f in "$ROOT"/sys/fs/bpf/tc/globals/cilium_*; do
    if [ -e "$f" ]; then rm -f "$f"; CHANGED=1; fi
  done
  for f in /var/run/cilium /var/lib/cilium; do
    if [ -e "$ROOT$f" ]; then rm -rf "${ROOT:?}$f"; log "removed $f"; CHANGED=1; fi
  done
}

if [ -x "$bin" ]; then
  case "${ROLE:-worker}" in controller | controller+worker) leave_etcd ;; esac
  "$bin" stop >/dev/null 2>&1 || true
  "$bin" reset
  log "k0s reset"
  remove_file /usr/local/bin/k0s
  CHANGED=1
else
  log "k0s is not installed; nothing to reset"
fi
cilium_cleanup
remove_file /etc/k0s/k0s.yaml
remove_file /etc/k0s/join-token
remove_file /etc/k0s/containerd.d/cluster-bootstrap-registries.toml
remove_file /var/lib/cluster-bootstrap/k0s-install-args
remove_file /var/lib/cluster-bootstrap/k0s-rollout
remove_file /var/lib/cluster-bootstrap/k0s-restored-from  # a rebuilt host may restore again
remove_file /var/lib/cluster-bootstrap/restored-k0s.yaml
for staged in "$ROOT"/var/lib/cluster-bootstrap/bin/k0s-*; do  # every staged version
  if [ -e "$staged" ]; then remove_file "${staged#"$ROOT"}"; fi
done
if [ "${REBOOT:-false}" = true ] && [ "$CHANGED" = 1 ]; then
  shutdown -r +1 "cluster-bootstrap: reboot after k0s reset" >/dev/null 2>&1 || die "could not schedule a reboot"
  log "reboot scheduled in one minute"
fi
finish
