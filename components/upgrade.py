"""Upgrades one minor at a time, checked against what really runs before anything changes.

Stage 1 — K0sVersionCheck: the k0s each host runs, read over SSH, against the pinned version. k0s
moves one minor at a time and never back (k0s docs/version-skew-policy.md): a pin two minors ahead
of any host is refused there, naming the minor to apply first, before any host is prepared, staged
or restarted (every Node waits for every check). `release_check` does the same for a Helm release
(Cilium, cert-manager) from the image its workload runs in the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import pulumi

from components import remote

TYPE = "cluster-bootstrap:hosts:K0sVersionCheck"


@dataclass(frozen=True)
class K0sVersionCheckArgs:
    version: str  # the pinned k0s
    hosts: Mapping[str, remote.Host]  # node name → how to reach it


class K0sVersionCheck(pulumi.ComponentResource):
    """One read-only step per host; it runs again whenever the pinned version changes."""

    def __init__(self, name: str, args: K0sVersionCheckArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(TYPE, name, None, opts)
        for node, host in sorted(args.hosts.items()):
            remote.run(f"{name}-{node}", host, "k0s-version-check.sh",
                       env={"K0S_VERSION": args.version, "NODE_NAME": node},
                       opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})


def release_check(name: str, parent: pulumi.Resource, host: remote.Host, component: str, workload: str,
                  version: str, after: Sequence[pulumi.Resource]) -> pulumi.Resource:
    """A read-only step on a controller: `workload` (namespace/kind/name) runs `component` at some
    version (its image's tag); moving to `version` more than one minor up, or down, is refused."""
    return remote.run(
        f"{name}-upgrade-check", host, "release-upgrade-check.sh",
        env={"COMPONENT": component, "WORKLOAD": workload, "VERSION": version},
        # why: it reads the running workload through the API the earlier stages serve
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(after)))
