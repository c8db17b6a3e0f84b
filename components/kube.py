"""How a layer reaches the cluster: the Kubernetes provider, and the resource every in-cluster
object is deleted with, so that destroying the cluster never deletes its objects one by one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class InCluster:
    provider: k8s.Provider
    anchor: pulumi.Resource  # the first controller's install step

    def opts(self, parent: pulumi.Resource, depends_on: Optional[Sequence] = None) -> pulumi.ResourceOptions:
        """Options for an object inside the cluster, created under `parent` after `depends_on`."""
        return pulumi.ResourceOptions(parent=parent, provider=self.provider, deleted_with=self.anchor,
                                      depends_on=list(depends_on) if depends_on is not None else None)
