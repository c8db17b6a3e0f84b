"""How a layer reaches the cluster: the Kubernetes provider, and the resource every in-cluster
object is deleted with, so that destroying the cluster never deletes its objects one by one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s


# The project's own Jobs (the seed Job, the backup CronJob) run a shell script in Gitea's rootless
# image: as its user, never root, with nothing writable but /tmp.
JOB_POD_SECURITY = {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                    "seccompProfile": {"type": "RuntimeDefault"}}
JOB_CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                          "capabilities": {"drop": ["ALL"]}}


def from_secret(env: str, secret: pulumi.Input[str], key: str) -> dict:
    """A container environment variable read from `key` of the Secret `secret`."""
    return {"name": env, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


@dataclass(frozen=True)
class InCluster:
    provider: k8s.Provider
    anchor: pulumi.Resource  # the first controller's install step

    def opts(self, parent: pulumi.Resource, depends_on: Optional[Sequence] = None) -> pulumi.ResourceOptions:
        """Options for an object inside the cluster, created under `parent` after `depends_on`."""
        return pulumi.ResourceOptions(parent=parent, provider=self.provider, deleted_with=self.anchor,
                                      depends_on=list(depends_on) if depends_on is not None else None)
