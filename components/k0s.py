"""Stage 2 — K0sCluster: k0s config, first controller, tokens, joins, kubeconfig, k8s Provider.

Rollout order, as k0sctl's: first controller → further controllers one at a time (etcd joins
and upgrades never overlap) → every worker in parallel. Bumping the version or the config
re-runs the same steps in the same order; `pulumi destroy` resets workers, then controllers.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components import remote
from components.kube import InCluster

TYPE = "cluster-bootstrap:k0s:K0sCluster"
TOKEN_EXPIRY = "2h"


@dataclass(frozen=True)
class Member:
    """One node as the control plane sees it, in rollout order."""

    name: str
    role: str  # controller | worker | controller+worker
    host: remote.Host
    ready: pulumi.Resource  # its Node layer: host prepared, CA trusted, k0s staged
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_controller(self) -> bool:
        return self.role != "worker"


@dataclass(frozen=True)
class K0sClusterArgs:
    version: str
    members: Sequence[Member]  # the first controller among them creates the cluster
    api_endpoint: str  # https://host:port the operator reaches the API at
    api_sans: Sequence[str]
    pod_cidr: str
    service_cidr: str
    cluster_identifier: str  # the Kubernetes provider's identity: stable across endpoint changes
    external_address: Optional[str] = None  # a load balancer or VIP in front of the controllers
    node_local_load_balancing: bool = False
    airgap: bool = False  # images come from the uploaded bundle: never pull
    api_proxy: Optional[str] = None  # kubeconfig proxy-url (a SOCKS tunnel through the bastion)
    reboot_after_reset: bool = False
    delete_unreachable: bool = False  # let destroy forget objects of a cluster that is gone


def k0s_config(args: K0sClusterArgs) -> dict:
    """The ClusterConfig every controller gets, identical on each of them."""
    api: dict = {"sans": list(args.api_sans)}
    if args.external_address:
        api["externalAddress"] = args.external_address
    network: dict = {
        "provider": "custom",  # Cilium, installed by the next stage
        "podCIDR": args.pod_cidr,
        "serviceCIDR": args.service_cidr,
        "kubeProxy": {"disabled": True},  # Cilium replaces kube-proxy
    }
    if args.node_local_load_balancing:
        network["nodeLocalLoadBalancing"] = {"enabled": True, "type": "EnvoyProxy"}
    spec: dict = {"api": api, "network": network, "telemetry": {"enabled": False}}
    if args.airgap:
        spec["images"] = {"default_pull_policy": "Never"}
    return {"apiVersion": "k0s.k0sproject.io/v1beta1", "kind": "ClusterConfig", "metadata": {"name": "k0s"}, "spec": spec}


def point_kubeconfig(raw: str, server: str, proxy: Optional[str]) -> str:
    """k0s's admin kubeconfig aimed at `server`, through `proxy` (a kubeconfig proxy-url) if set.

    Done here rather than on the host, so moving the endpoint or the proxy re-runs nothing there."""
    config = yaml.safe_load(raw)
    for entry in config.get("clusters") or []:
        cluster = entry["cluster"]
        cluster["server"] = server
        cluster.pop("proxy-url", None)
        if proxy:
            cluster["proxy-url"] = proxy
    return yaml.safe_dump(config, sort_keys=False)


class K0sCluster(pulumi.ComponentResource):
    """The control plane and every node joined to it; `cluster` reaches the cluster."""

    kubeconfig: pulumi.Output[str]
    api_endpoint: str
    provider: k8s.Provider
    cluster: InCluster  # how later layers create objects in the cluster
    admin_host: remote.Host  # the first controller: where `k0s kubectl` checks run

    def __init__(self, name: str, args: K0sClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(TYPE, name, None, opts)
        config_b64 = base64.b64encode(yaml.safe_dump(k0s_config(args), sort_keys=True).encode()).decode()
        controllers = [m for m in args.members if m.is_controller]
        workers = [m for m in args.members if not m.is_controller]
        first, *other_controllers = controllers
        self.admin_host = first.host

        def install(member: Member, token, depends_on: list) -> pulumi.Resource:
            env = {
                "ROLE": member.role,
                "K0S_VERSION": args.version,
                "NODE_LABELS": ",".join(f"{k}={v}" for k, v in sorted(member.labels.items())),
            }
            if member.is_controller:
                env["K0S_CONFIG_B64"] = config_b64
            return remote.run(
                f"{name}-{member.name}",
                member.host,
                "k0s-node.sh",
                env=env,
                secret_env={"JOIN_TOKEN": token} if token is not None else None,
                delete=("k0s-reset.sh", {"K0S_VERSION": args.version,
                                         "REBOOT": str(args.reboot_after_reset).lower()}),
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
            )

        # why: the host is prepared, trusts the CA, and has this k0s version staged
        anchor = first_install = install(first, None, depends_on=[first.ready])

        def token(role: str, joiners: list[Member]):
            return remote.run(
                f"{name}-{role}-token",
                first.host,
                "k0s-token.sh",
                # JOINERS: a new node gets a fresh token (tokens expire); joined nodes ignore it.
                env={"TOKEN_ROLE": role, "TOKEN_EXPIRY": TOKEN_EXPIRY,
                     "JOINERS": ",".join(m.name for m in joiners)},
                secret_output=True,
                # why: tokens are minted by the running first controller
                opts=pulumi.ResourceOptions(parent=self, depends_on=[first_install]),
            )

        previous = first_install
        if other_controllers:
            controller_token = token("controller", other_controllers).stdout
            for member in other_controllers:
                # why: etcd members join (and upgrade) one at a time; the node's host phases are done
                previous = install(member, controller_token, depends_on=[previous, member.ready])
        if workers:
            worker_token = token("worker", workers).stdout
            for member in workers:
                # why: workers follow the whole control plane (rollout order) but never each other
                install(member, worker_token, depends_on=[previous, member.ready])

        self.api_endpoint = args.api_endpoint
        admin = remote.run(
            f"{name}-kubeconfig",
            first.host,
            "k0s-kubeconfig.sh",
            secret_output=True,
            # why: the admin kubeconfig exists once the first controller serves the API
            opts=pulumi.ResourceOptions(parent=self, depends_on=[first_install]),
        )
        self.kubeconfig = pulumi.Output.secret(
            admin.stdout.apply(lambda raw: point_kubeconfig(raw, args.api_endpoint, args.api_proxy)))
        self.provider = k8s.Provider(
            f"{name}-provider",
            kubeconfig=self.kubeconfig,
            # The provider's identity is this stack's cluster, not its kubeconfig: a new endpoint,
            # proxy or client certificate is an update, never a replacement of every in-cluster
            # object (pulumi-kubernetes DiffConfig replaces on any change of the active cluster
            # unless clusterIdentifier is set and unchanged).
            cluster_identifier=args.cluster_identifier,
            delete_unreachable=args.delete_unreachable,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.cluster = InCluster(provider=self.provider, anchor=anchor)
        self.register_outputs({"apiEndpoint": self.api_endpoint, "kubeconfig": self.kubeconfig})
