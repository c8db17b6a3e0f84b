"""Stage 3 — Cilium: CNI and kube-proxy replacement, LB IPAM pool, L2 announcements, ingress.

Helm must not wait for this release: its wait (helm v3 `pkg/kube/ready.go`, serviceReady) blocks
until every LoadBalancer Service has an address, and the shared ingress's Service gets one only
from the pool created after the release, whose CRD the Cilium operator registers when it starts.
So the release is applied without Helm's wait, and two waits of our own run on the first
controller instead: agents, envoy, operator, every node Ready and the CRDs established → the pool
and the L2 policy → the ingress Service holds its fixed address and a node announces it. Later
stages depend on this layer, so `pulumi up` goes on only once Cilium really serves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components import remote, upgrade
from components.kube import InCluster

TYPE = "cluster-bootstrap:network:Cilium"
REPOSITORY = "https://helm.cilium.io/"
NAMESPACE = "kube-system"
INGRESS_SERVICE = "cilium-ingress"  # the chart's shared ingress Service (ingressController.service.name)
# What the pinned chart runs (the render test checks this list against the rendered workloads).
ROLLOUTS = ("daemonset/cilium", "daemonset/cilium-envoy", "deployment/cilium-operator")
# CRDs the operator registers at start that this layer's own objects need.
CRDS = ("ciliumloadbalancerippools.cilium.io", "ciliuml2announcementpolicies.cilium.io")


@dataclass(frozen=True)
class CiliumArgs:
    version: str
    cluster: InCluster
    admin_host: remote.Host  # a controller, where the readiness waits run (`k0s kubectl`)
    api_host: str  # how agents reach the API before any Service works (no kube-proxy)
    api_port: int
    pod_cidr: str
    pool: str  # LB IPAM addresses: a CIDR or 'first-last'
    ingress_ip: str  # the shared ingress's fixed address, inside the pool
    default_tls: tuple[str, str]  # (namespace, name) of the Secret the ingress serves by default
    nodes: Sequence[str]  # the nodes that run pods (and agents)
    after: Sequence[pulumi.Resource]  # the control plane with every node joined
    upgrade_compatibility: Optional[str] = None  # the minor the cluster was first installed with


def helm_values(args: CiliumArgs) -> dict:
    """Chart values (every one consumed by the pinned chart: the render test proves it)."""
    compatibility = {"upgradeCompatibility": args.upgrade_compatibility} if args.upgrade_compatibility else {}
    return {
        **compatibility,
        "kubeProxyReplacement": True,
        "k8sServiceHost": args.api_host,
        "k8sServicePort": args.api_port,
        "ipam": {
            "mode": "cluster-pool",
            "operator": {"clusterPoolIPv4PodCIDRList": [args.pod_cidr], "clusterPoolIPv4MaskSize": 24},
        },
        "operator": {"replicas": 1 if len(args.nodes) < 2 else 2},
        # L2 announcements answer ARP for LoadBalancer IPs from the pool; they take leases, so the
        # agents' API client gets more headroom than the default.
        "l2announcements": {"enabled": True},
        "k8sClientRateLimit": {"qps": 20, "burst": 40},
        # One shared ingress on a fixed pool address (what `*.<domain>` points at), requested with
        # LB IPAM's annotation (spec.loadBalancerIP is deprecated in Kubernetes); Ingresses that
        # name hosts but no secret get the wildcard certificate the platform stage issues.
        "ingressController": {
            "enabled": True,
            "default": True,
            "loadbalancerMode": "shared",
            "service": {"annotations": {"lbipam.cilium.io/ips": args.ingress_ip}},
            "defaultSecretNamespace": args.default_tls[0],
            "defaultSecretName": args.default_tls[1],
        },
    }


def pool_blocks(pool: str) -> list[dict]:
    if "-" in pool:
        start, stop = pool.split("-")
        return [{"start": start, "stop": stop}]
    return [{"cidr": pool}]


class Cilium(pulumi.ComponentResource):
    """The Cilium release and the objects that give bare metal a LoadBalancer (the ingress IP)."""

    release: k8s.helm.v3.Release
    ready: pulumi.Resource  # the last wait: the ingress serves on its address

    def __init__(self, name: str, args: CiliumArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(TYPE, name, None, opts)
        cluster = args.cluster
        values = helm_values(args)
        checked = upgrade.release_check(name, self, args.admin_host, "Cilium", f"{NAMESPACE}/daemonset/cilium",
                                        args.version, args.after)
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name="cilium",
            chart="cilium",
            version=args.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=REPOSITORY),
            namespace=NAMESPACE,
            values=values,
            # Applied without Helm's wait (and so without `atomic`, which forces it): the waits
            # below replace it, ordered around the pool that Helm's wait would need first.
            skip_await=True,
            # why: every node has joined, so the agents and the operator can schedule; and the
            # running Cilium may move to this version (one minor at a time)
            opts=cluster.opts(self, depends_on=[*args.after, checked]),
        )
        # The release's identity in the waits' environment: a new chart version or values re-run them.
        release_id = f"cilium {args.version} " + hashlib.sha256(
            json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]
        agents = remote.run(
            f"{name}-agents-ready",
            args.admin_host,
            "k8s-wait.sh",
            env={"RELEASE": release_id,
                 "ROLLOUTS": " ".join(f"{kind}/{NAMESPACE}/{obj}" for kind, obj in
                                      (r.split("/") for r in ROLLOUTS)),
                 "CRDS": " ".join(CRDS),
                 "NODES": " ".join(args.nodes)},
            # why: waits for what the release just applied
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
        )
        # why: the operator has registered the pool's and the policy's CRDs (agents-ready waited)
        after_agents = cluster.opts(self, depends_on=[agents])
        pool = k8s.apiextensions.CustomResource(
            f"{name}-lb-pool",
            api_version="cilium.io/v2",
            kind="CiliumLoadBalancerIPPool",
            metadata={"name": "cluster-bootstrap"},
            spec={"blocks": pool_blocks(args.pool)},
            opts=after_agents,
        )
        policy = k8s.apiextensions.CustomResource(
            f"{name}-l2-policy",
            api_version="cilium.io/v2alpha1",
            kind="CiliumL2AnnouncementPolicy",
            metadata={"name": "cluster-bootstrap"},
            spec={"loadBalancerIPs": True},
            opts=after_agents,
        )
        self.ready = remote.run(
            f"{name}-ingress-ready",
            args.admin_host,
            "k8s-wait.sh",
            env={"RELEASE": release_id,
                 "LB_SERVICE": f"{NAMESPACE}/{INGRESS_SERVICE}={args.ingress_ip}",
                 # Cilium names an announcement's lease cilium-l2announce-<namespace>-<service>.
                 "LEASE": f"{NAMESPACE}/cilium-l2announce-{NAMESPACE}-{INGRESS_SERVICE}"},
            # why: the address comes from the pool and is announced under the policy
            opts=pulumi.ResourceOptions(parent=self, depends_on=[pool, policy, agents]),
        )
        self.register_outputs({})
