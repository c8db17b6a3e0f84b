"""Stage 3 — Cilium: CNI and kube-proxy replacement, LB IPAM pool, L2 announcements, ingress."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.k0s import K0sCluster, in_cluster_api
from stacks.config import StackConfig

TYPE = "cluster-bootstrap:network:Cilium"
REPOSITORY = "https://helm.cilium.io/"
NAMESPACE = "kube-system"
# (namespace, name) of the wildcard certificate's Secret: issued in stage 4, served by the ingress.
WILDCARD_SECRET = ("kube-system", "wildcard-tls")


def helm_values(cfg: StackConfig) -> dict:
    """Chart values (checked against the chart's values reference for the pinned version)."""
    host, port = in_cluster_api(cfg)
    schedulable = len(cfg.workers)
    return {
        "kubeProxyReplacement": True,
        "k8sServiceHost": host,
        "k8sServicePort": port,
        "ipam": {
            "mode": "cluster-pool",
            "operator": {"clusterPoolIPv4PodCIDRList": [cfg.k0s.pod_cidr], "clusterPoolIPv4MaskSize": 24},
        },
        "operator": {"replicas": 1 if schedulable < 2 else 2},
        # L2 announcements answer ARP for LoadBalancer IPs from the pool; they take leases, so the
        # agents' API client gets more headroom than the default.
        "l2announcements": {"enabled": True},
        "externalIPs": {"enabled": True},
        "k8sClientRateLimit": {"qps": 20, "burst": 40},
        # One shared ingress on a fixed pool address (what `*.<domain>` points at); Ingresses that
        # name hosts but no secret get the wildcard certificate the platform stage issues.
        "ingressController": {
            "enabled": True,
            "default": True,
            "loadbalancerMode": "shared",
            "service": {"loadBalancerIP": ingress_ip(cfg)},
            "defaultSecretNamespace": WILDCARD_SECRET[0],
            "defaultSecretName": WILDCARD_SECRET[1],
        },
    }


def ingress_ip(cfg: StackConfig) -> str:
    """The shared ingress's address: the first usable address of the LB pool."""
    pool = cfg.cilium.load_balancer_pool
    if "-" in pool:
        return pool.split("-")[0]
    net = ipaddress.ip_network(pool)
    return str(next(net.hosts()) if net.num_addresses > 2 else net.network_address)


def pool_blocks(pool: str) -> list[dict]:
    if "-" in pool:
        start, stop = pool.split("-")
        return [{"start": start, "stop": stop}]
    return [{"cidr": pool}]


@dataclass(frozen=True)
class CiliumArgs:
    cfg: StackConfig
    cluster: K0sCluster


class Cilium(pulumi.ComponentResource):
    """The Cilium release and the objects that give bare metal a LoadBalancer (the ingress IP)."""

    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: CiliumArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(TYPE, name, None, opts)
        cfg, cluster = args.cfg, args.cluster
        in_cluster = cluster.in_cluster(self)
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name="cilium",
            chart="cilium",
            version=cfg.versions.cilium,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=REPOSITORY),
            namespace=NAMESPACE,
            values=helm_values(cfg),
            atomic=True,
            timeout=900,
            # why: every node has joined, so the agents and the operator can schedule
            opts=cluster.in_cluster(self, depends_on=[cluster]),
        )
        # why: the operator registers Cilium's CRDs when it starts, after the release is ready
        after_release = cluster.in_cluster(self, depends_on=[self.release])
        k8s.apiextensions.CustomResource(
            f"{name}-lb-pool",
            api_version="cilium.io/v2",
            kind="CiliumLoadBalancerIPPool",
            metadata={"name": "cluster-bootstrap"},
            spec={"blocks": pool_blocks(cfg.cilium.load_balancer_pool)},
            opts=after_release,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-l2-policy",
            api_version="cilium.io/v2alpha1",
            kind="CiliumL2AnnouncementPolicy",
            metadata={"name": "cluster-bootstrap"},
            spec={"loadBalancerIPs": True, "externalIPs": True},
            opts=after_release,
        )
        self.register_outputs({})
