"""The composition: every layer built in stage order, read top-down like k0sctl's phase list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi

from components.certmanager import CertManager, CertManagerArgs
from components.cilium import Cilium, CiliumArgs
from components.dns import DnsZone, DnsZoneArgs
from components.flux import Flux, FluxArgs
from components.gitea import Gitea, GiteaArgs
from components.k0s import K0sCluster, K0sClusterArgs
from components.node import Node, NodeArgs
from components.sops import SopsAgeSecret, SopsAgeSecretArgs
from components.storage import LocalPathStorage, LocalPathStorageArgs
from components.pki import AcmeAccount, AcmeAccountArgs, InternalCa, InternalCaArgs
from stacks.config import StackConfig

DEFAULT_AWS_REGION = "us-east-1"  # Route53 is global; the region only steers cert-manager's STS calls


@dataclass
class Cluster:
    """The built layers of one stack."""

    config: StackConfig
    dns: DnsZone
    ca: InternalCa
    nodes: list[Node]
    k0s: K0sCluster
    cilium: Cilium
    storage: Optional[LocalPathStorage]  # None: the user's own StorageClass
    cert_manager: CertManager
    sops: SopsAgeSecret
    gitea: Gitea
    flux: Flux

    def outputs(self) -> dict[str, pulumi.Input]:
        return {
            "zoneId": self.dns.zone_id,
            "nameServers": self.dns.name_servers,
            "internalCaCert": self.ca.cert_pem,
            "apiEndpoint": self.k0s.api_endpoint,
            "kubeconfig": pulumi.Output.secret(self.k0s.kubeconfig),
            "sopsAgeRecipient": self.sops.recipient,
            "gitRepositoryUrl": self.gitea.clone_url,
        }


def build(cfg: StackConfig) -> Cluster:
    """Create every layer of the stack from its validated configuration."""
    protect = cfg.protect

    # Stage 0 — foundation: the zone later layers publish names in, and the internal CA.
    dns = DnsZone(
        "dns",
        DnsZoneArgs(
            domain=cfg.domain,
            create_zone=cfg.dns.create_zone,
            zone_id=cfg.dns.zone_id,
            protect=protect,
            api_targets=tuple(cfg.api_targets),
        ),
    )
    ca = InternalCa("ca", InternalCaArgs(common_name=f"{cfg.domain} internal CA", protect=protect))
    acme = AcmeAccount("acme", AcmeAccountArgs(protect=protect))

    # Stage 1 — hosts: each prepared, trusting the CA, with k0s staged; in parallel.
    private_key = pulumi.Output.secret(cfg.ssh.private_key.get_secret_value()) if cfg.ssh.private_key else None
    nodes = [
        Node(
            f"node-{n.name}",
            NodeArgs(
                node=n,
                ssh=cfg.ssh,
                private_key=private_key,
                ca_cert_pem=ca.cert_pem,
                registry_host=f"registry.{cfg.domain}",
                k0s_version=cfg.versions.k0s,
                download_url=cfg.k0s.download_url,
                sha256=dict(cfg.k0s.sha256),
                binary_path=cfg.k0s.binary_path,
                airgap_bundle=cfg.k0s.airgap_bundle,
            ),
        )
        for n in cfg.nodes
    ]

    # Stage 2 — control plane: controllers one at a time, then every worker.
    # (Each node step depends on its own Node component: see components/k0s.py.)
    k0s = K0sCluster("k0s", K0sClusterArgs(cfg=cfg, nodes=list(zip(cfg.nodes, nodes))))

    # Stage 3 — network.
    cilium = Cilium(
        "cilium",
        CiliumArgs(cfg=cfg, cluster=k0s),
        # why: stage order: the network comes up on a complete cluster (children repeat it, as
        # Pulumi children do not inherit a component's depends_on)
        opts=pulumi.ResourceOptions(depends_on=[k0s]),
    )

    # Stage 3 — storage: the default StorageClass, unless the stack names its own (then nothing
    # is installed and Gitea's volume uses that class).
    storage = None
    if cfg.storage.storage_class is None:
        storage = LocalPathStorage(
            "storage",
            LocalPathStorageArgs(
                chart_version=cfg.versions.local_path_provisioner,
                busybox_version=cfg.versions.busybox,
                host_path=cfg.storage.local_path,
                provider=k0s.provider,
                anchor=k0s.anchor,
                # why: the provisioner's pod needs the pod network (Cilium serving)
                after=[cilium],
            ),
        )
    storage_class = storage.storage_class if storage else cfg.storage.storage_class

    # Stage 4 — platform TLS: DNS-01 credentials, cert-manager, issuers, the wildcard certificate.
    cert_manager = CertManager(
        "cert-manager",
        CertManagerArgs(cfg=cfg, cluster=k0s, cilium=cilium, dns=dns, ca=ca, account=acme,
                        aws_region=pulumi.Config("aws").get("region") or DEFAULT_AWS_REGION),
        # why: stage order: in-cluster TLS comes up on a working pod network, with the zone in place
        opts=pulumi.ResourceOptions(depends_on=[cilium, dns]),
    )

    # Stage 5 — GitOps: the age identity, a seeded in-cluster Gitea, and Flux syncing from it.
    sops = SopsAgeSecret(
        "sops",
        SopsAgeSecretArgs(cfg=cfg, cluster=k0s),
        # why: its namespace and Secret live in the cluster (children repeat it)
        opts=pulumi.ResourceOptions(depends_on=[k0s]),
    )
    gitea = Gitea(
        "gitea",
        GiteaArgs(cfg=cfg, cluster=k0s, cilium=cilium, sops_config=sops.sops_config,
                  storage_class=storage_class, storage=[storage] if storage else []),
        # why: stage order: Gitea's pods need the pod network, its volume the storage layer
        # (children repeat it)
        opts=pulumi.ResourceOptions(depends_on=[cilium, *([storage] if storage else [])]),
    )
    flux = Flux(
        "flux",
        FluxArgs(cfg=cfg, cluster=k0s, cilium=cilium, sops=sops, gitea=gitea),
        # why: Flux syncs from the seeded Gitea and decrypts with the age identity; its
        # controllers need the pod network (children repeat the precise edges)
        opts=pulumi.ResourceOptions(depends_on=[gitea, sops, cilium]),
    )
    return Cluster(config=cfg, dns=dns, ca=ca, nodes=nodes, k0s=k0s, cilium=cilium, storage=storage,
                   cert_manager=cert_manager, sops=sops, gitea=gitea, flux=flux)
