"""Stage 1, before anything on a host changes — K0sVersionCheck: the k0s each host really runs,
read over SSH, against the pinned version. k0s moves one minor at a time and never back (k0s
docs/version-skew-policy.md): a pin two minors ahead of any host is refused there, naming the minor
to apply first, before any host is prepared, staged or restarted (every Node waits for every check).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

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
