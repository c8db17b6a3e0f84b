"""Stage 2 — K0sCluster: k0s config, first controller, tokens, joins, kubeconfig, k8s Provider.

Rollout order, as k0sctl's: first controller → further controllers one at a time (etcd joins
and upgrades never overlap) → every worker in parallel. Bumping `versions.k0s` or the config
re-runs the same steps in the same order; `pulumi destroy` resets workers, then controllers.
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components import remote
from components.node import Node
from stacks.config import NodeConfig, StackConfig

TYPE = "cluster-bootstrap:k0s:K0sCluster"
API_PORT = 6443
NLLB_API_PORT = 7443  # k0s node-local load balancer (Envoy) on each worker's loopback
TOKEN_EXPIRY = "2h"


def uses_nllb(cfg: StackConfig) -> bool:
    """Node-local load balancing: several controllers and no external load balancer address."""
    return len(cfg.controllers) > 1 and not cfg.k0s.api_address


def api_host(cfg: StackConfig) -> str:
    """Where the operator (and Pulumi's k8s provider) reach the API."""
    return cfg.k0s.api_address or cfg.controllers[0].address


def api_endpoint(cfg: StackConfig) -> str:
    host = api_host(cfg)
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass
    return f"https://{host}:{API_PORT}"


def in_cluster_api(cfg: StackConfig) -> tuple[str, int]:
    """The API address Cilium's agents use before any Service works (no kube-proxy)."""
    if cfg.k0s.api_address:
        return cfg.k0s.api_address, API_PORT
    if uses_nllb(cfg):
        return "localhost", NLLB_API_PORT
    first = cfg.controllers[0]
    return first.private_address or first.address, API_PORT


def k0s_config(cfg: StackConfig) -> dict:
    """The ClusterConfig every controller gets, identical on each of them."""
    controllers = cfg.controllers
    sans = {f"api.{cfg.domain}"}
    sans.update(n.address for n in controllers)
    sans.update(n.private_address for n in controllers if n.private_address)
    if cfg.k0s.api_address:
        sans.add(cfg.k0s.api_address)
    api: dict = {"sans": sorted(sans)}
    if cfg.k0s.api_address:
        api["externalAddress"] = cfg.k0s.api_address
    network: dict = {
        "provider": "custom",  # Cilium, installed by the next stage
        "podCIDR": cfg.k0s.pod_cidr,
        "serviceCIDR": cfg.k0s.service_cidr,
        "kubeProxy": {"disabled": True},  # Cilium replaces kube-proxy
    }
    if uses_nllb(cfg):
        network["nodeLocalLoadBalancing"] = {"enabled": True, "type": "EnvoyProxy"}
    spec: dict = {"api": api, "network": network, "telemetry": {"enabled": False}}
    if cfg.k0s.airgap_bundle:
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


@dataclass(frozen=True)
class K0sClusterArgs:
    cfg: StackConfig
    nodes: Sequence[tuple[NodeConfig, Node]]


class K0sCluster(pulumi.ComponentResource):
    """The control plane and every node joined to it; `provider` reaches the cluster."""

    kubeconfig: pulumi.Output[str]
    api_endpoint: str
    provider: k8s.Provider
    anchor: pulumi.Resource  # the first controller: in-cluster objects are deleted with it
    admin_host: remote.Host  # the first controller: where `k0s kubectl` checks run

    def __init__(self, name: str, args: K0sClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(TYPE, name, None, opts)
        cfg = args.cfg
        config_b64 = base64.b64encode(yaml.safe_dump(k0s_config(cfg), sort_keys=True).encode()).decode()
        controllers = [(n, node) for n, node in args.nodes if n.is_controller]
        workers = [(n, node) for n, node in args.nodes if not n.is_controller]
        (first_cfg, first), *other_controllers = controllers
        self.admin_host = first.host

        def install(node_cfg: NodeConfig, node: Node, token, depends_on: list) -> pulumi.Resource:
            env = {
                "ROLE": node_cfg.role,
                "K0S_VERSION": cfg.versions.k0s,
                "NODE_LABELS": ",".join(f"{k}={v}" for k, v in sorted(node_cfg.labels.items())),
            }
            if node_cfg.is_controller:
                env["K0S_CONFIG_B64"] = config_b64
            return remote.run(
                f"{name}-{node_cfg.name}",
                node.host,
                "k0s-node.sh",
                env=env,
                secret_env={"JOIN_TOKEN": token} if token is not None else None,
                delete=("k0s-reset.sh", {"K0S_VERSION": cfg.versions.k0s,
                                         "REBOOT": str(cfg.k0s.reboot_after_reset).lower()}),
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
            )

        # why: the host is prepared, trusts the CA, and has this k0s version staged
        self.anchor = first_install = install(first_cfg, first, None, depends_on=[first])

        def token(role: str, joiners: list[NodeConfig]):
            return remote.run(
                f"{name}-{role}-token",
                first.host,
                "k0s-token.sh",
                # JOINERS: a new node gets a fresh token (tokens expire); joined nodes ignore it.
                env={"TOKEN_ROLE": role, "TOKEN_EXPIRY": TOKEN_EXPIRY,
                     "JOINERS": ",".join(n.name for n in joiners)},
                secret_output=True,
                # why: tokens are minted by the running first controller
                opts=pulumi.ResourceOptions(parent=self, depends_on=[first_install]),
            )

        previous = first_install
        if other_controllers:
            controller_token = token("controller", [n for n, _ in other_controllers]).stdout
            for node_cfg, node in other_controllers:
                # why: etcd members join (and upgrade) one at a time; the node's host phases are done
                previous = install(node_cfg, node, controller_token, depends_on=[previous, node])
        if workers:
            worker_token = token("worker", [n for n, _ in workers]).stdout
            for node_cfg, node in workers:
                # why: workers follow the whole control plane (rollout order) but never each other
                install(node_cfg, node, worker_token, depends_on=[previous, node])

        self.api_endpoint = api_endpoint(cfg)
        admin = remote.run(
            f"{name}-kubeconfig",
            first.host,
            "k0s-kubeconfig.sh",
            secret_output=True,
            # why: the admin kubeconfig exists once the first controller serves the API
            opts=pulumi.ResourceOptions(parent=self, depends_on=[first_install]),
        )
        proxy = cfg.k0s.api_proxy
        self.kubeconfig = pulumi.Output.secret(
            admin.stdout.apply(lambda raw: point_kubeconfig(raw, self.api_endpoint, proxy)))
        self.provider = k8s.Provider(
            f"{name}-provider",
            kubeconfig=self.kubeconfig,
            # The provider's identity is this stack's cluster, not its kubeconfig: a new endpoint,
            # proxy or client certificate is an update, never a replacement of every in-cluster
            # object (pulumi-kubernetes DiffConfig replaces on any change of the active cluster
            # unless clusterIdentifier is set and unchanged).
            cluster_identifier=f"cluster-bootstrap/{pulumi.get_stack()}",
            # A throwaway cluster may already be gone on destroy; never forget prod objects.
            delete_unreachable=not cfg.protect,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"apiEndpoint": self.api_endpoint, "kubeconfig": self.kubeconfig})

    def in_cluster(self, parent: pulumi.Resource, depends_on: Optional[list] = None) -> pulumi.ResourceOptions:
        """Options for an object inside this cluster: created through its provider, and deleted with
        its first controller, so destroying the cluster never deletes such objects one by one."""
        return pulumi.ResourceOptions(parent=parent, provider=self.provider, deleted_with=self.anchor,
                                      depends_on=depends_on)
