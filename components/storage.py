"""Stage 3 — LocalPathStorage: the cluster's default StorageClass, served by local-path-provisioner.

Why this provisioner: a one-node dev cluster and a small prod cluster with Gitea's single
ReadWriteOnce volume need a dynamic provisioner with no host prerequisites. local-path-provisioner
creates hostPath volumes through a helper pod (no CSI driver, so k0s's kubelet directory
/var/lib/k0s/kubelet does not matter; no iSCSI daemon, unlike Longhorn, whose default of three
replicas two workers cannot hold either). The price: a volume lives on one node's disk, so it is
backed up rather than replicated (see the README).

The class binds a volume when its first pod is scheduled (`WaitForFirstConsumer`), so a PVC waits
for its pod; Helm's wait on a release with both sees the PVC bound once the pod is placed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.kube import InCluster

TYPE = "cluster-bootstrap:storage:LocalPathStorage"
# Published by the project's own release workflow on every tag (no classic chart repository).
CHART = "oci://ghcr.io/rancher/local-path-provisioner/charts/local-path-provisioner"
NAMESPACE = "local-path-storage"
CLASS_NAME = "local-path"
HELPER_IMAGE = "docker.io/library/busybox"


@dataclass(frozen=True)
class LocalPathStorageArgs:
    chart_version: str
    busybox_version: str  # the helper pod's image (the chart's default is an unpinned busybox:latest)
    host_path: str  # where volumes live on each node
    cluster: InCluster
    after: Sequence[pulumi.Resource]  # what must be up first: the pod network


def helm_values(args: LocalPathStorageArgs) -> dict:
    """Chart values (every one consumed by the pinned chart: the render test proves it)."""
    return {
        "storageClass": {"defaultClass": True, "name": CLASS_NAME},
        "nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": [args.host_path]}],
        "helperImage": {"repository": HELPER_IMAGE, "tag": args.busybox_version},
    }


class LocalPathStorage(pulumi.ComponentResource):
    """local-path-provisioner and its StorageClass, the cluster's default; `storage_class` names it."""

    storage_class: str

    def __init__(self, name: str, args: LocalPathStorageArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(TYPE, name, None, opts)
        self.storage_class = CLASS_NAME
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": NAMESPACE},
            # why: stage order: storage comes after the pod network
            opts=args.cluster.opts(self, depends_on=args.after),
        )
        k8s.helm.v3.Release(
            f"{name}-release",
            name="local-path-provisioner",
            chart=CHART,
            version=args.chart_version,
            namespace=namespace.metadata.name,
            values=helm_values(args),
            # Awaited: the provisioner is running (a Deployment) before anything claims a volume.
            atomic=True,
            timeout=600,
            # why: its pod needs the pod network (Cilium ready) to start
            opts=args.cluster.opts(self, depends_on=args.after),
        )
        self.register_outputs({"storageClass": self.storage_class})
