"""Facts derived from the stack's configuration that more than one layer needs, computed once.

The composition passes them to each layer as plain values; no layer derives them itself.
"""

from __future__ import annotations

import ipaddress

from stacks.config import StackConfig

API_PORT = 6443
NLLB_API_PORT = 7443  # k0s node-local load balancer (Envoy) on each worker's loopback
# (namespace, name) of the wildcard certificate's Secret: issued by the platform stage, served by
# the ingress as its default certificate.
WILDCARD_TLS = ("kube-system", "wildcard-tls")


def node_local_load_balancing(cfg: StackConfig) -> bool:
    """k0s NLLB: several controllers and no external load balancer address."""
    return len(cfg.controllers) > 1 and not cfg.k0s.api_address


def api_endpoint(cfg: StackConfig) -> str:
    """Where the operator (and Pulumi's Kubernetes provider) reach the API."""
    host = cfg.k0s.api_address or cfg.controllers[0].address
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
    if node_local_load_balancing(cfg):
        return "localhost", NLLB_API_PORT
    first = cfg.controllers[0]
    return first.private_address or first.address, API_PORT


def api_sans(cfg: StackConfig) -> list[str]:
    """Names and addresses the API server's certificate must cover."""
    sans = {f"api.{cfg.domain}"}
    sans.update(n.address for n in cfg.controllers)
    sans.update(n.private_address for n in cfg.controllers if n.private_address)
    if cfg.k0s.api_address:
        sans.add(cfg.k0s.api_address)
    return sorted(sans)


def ingress_ip(cfg: StackConfig) -> str:
    """The shared ingress's address: the first usable address of the LB pool (never a CIDR's
    network address, which LB IPAM keeps back)."""
    pool = cfg.cilium.load_balancer_pool
    if "-" in pool:
        return pool.split("-")[0]
    net = ipaddress.ip_network(pool)
    return str(next(net.hosts()) if net.num_addresses > 2 else net.network_address)
