"""Stage 5 — Flux: the Flux Operator and a FluxInstance, syncing `flux.path` from the in-cluster Gitea.

Pulumi owns the controllers, the GitRepository, the root Kustomization and the Receiver (and the
Secrets they read); Flux owns everything in the repository. Nothing is owned by both.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import pulumi
import pulumi_kubernetes as k8s

from components.certmanager import issuer_name
from components.cilium import Cilium
from components.k0s import K0sCluster
from components.sops import SECRET_NAME as SOPS_SECRET
from components.sops import SopsAgeSecret
from stacks.config import StackConfig

if TYPE_CHECKING:
    from components.gitea import Gitea

TYPE = "cluster-bootstrap:gitops:Flux"
OPERATOR_CHART = "oci://ghcr.io/controlplaneio-fluxcd/charts/flux-operator"
REGISTRY = "ghcr.io/fluxcd"
COMPONENTS = ["source-controller", "kustomize-controller", "helm-controller", "notification-controller"]
SYNC_NAME = "flux-system"  # the GitRepository and the root Kustomization (Flux's convention)
CREDENTIALS_SECRET = "gitea-deploy-key"
RECEIVER_NAME = "gitea"
RECEIVER_SECRET = "gitea-webhook-token"
RECEIVER_SERVICE = "webhook-receiver"  # notification-controller's Service (port 80)


def receiver_path(token: str, name: str, namespace: str) -> str:
    """The path notification-controller serves a Receiver on: /hook/sha256(token+name+namespace)."""
    return "/hook/" + hashlib.sha256((token + name + namespace).encode()).hexdigest()


def substitutions(cfg: StackConfig) -> dict[str, str]:
    """Per-stack values the repository's manifests use as ${VAR} (Flux post-build substitution)."""
    return {"CLUSTER_DOMAIN": cfg.domain, "ACME_ISSUER": issuer_name(cfg.acme.server)}


@dataclass(frozen=True)
class FluxArgs:
    cfg: StackConfig
    cluster: K0sCluster
    cilium: Cilium
    sops: SopsAgeSecret
    gitea: "Gitea"


class Flux(pulumi.ComponentResource):
    """Flux controllers and the objects that point them at the seeded repository."""

    def __init__(self, name: str, args: FluxArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(TYPE, name, None, opts)
        cfg, cluster, gitea = args.cfg, args.cluster, args.gitea
        in_cluster = cluster.in_cluster(self)
        ns = args.sops.namespace.metadata.name

        operator = k8s.helm.v3.Release(
            f"{name}-operator",
            name="flux-operator",
            chart=OPERATOR_CHART,
            version=cfg.versions.flux_operator,
            namespace=ns,
            atomic=True,
            timeout=600,
            # why: the operator runs on the pod network (Cilium) in the namespace SopsAgeSecret owns
            opts=cluster.in_cluster(self, depends_on=[args.cilium, args.sops.namespace]),
        )
        instance = k8s.apiextensions.CustomResource(
            f"{name}-instance",
            api_version="fluxcd.controlplane.io/v1",
            kind="FluxInstance",
            metadata={
                "name": "flux",  # the operator reconciles exactly one instance, named flux
                "namespace": ns,
                # Pulumi waits until the controllers (and their CRDs) are up.
                "annotations": {"pulumi.com/waitFor": "condition=Ready"},
            },
            spec={
                "distribution": {"version": cfg.versions.flux, "registry": REGISTRY},
                "components": COMPONENTS,
                "cluster": {"type": "kubernetes", "networkPolicy": True, "domain": "cluster.local"},
            },
            # why: the operator installs the FluxInstance CRD and reconciles it
            opts=cluster.in_cluster(self, depends_on=[operator]),
        )

        credentials = k8s.core.v1.Secret(
            f"{name}-gitea-credentials",
            metadata={"name": CREDENTIALS_SECRET, "namespace": ns},
            type="Opaque",
            string_data={
                "identity": pulumi.Output.secret(gitea.deploy_key.private_key_openssh),
                "identity.pub": gitea.deploy_key.public_key_openssh,
                "known_hosts": gitea.known_hosts,
            },
            opts=in_cluster,
        )
        repository = k8s.apiextensions.CustomResource(
            f"{name}-git-repository",
            api_version="source.toolkit.fluxcd.io/v1",
            kind="GitRepository",
            metadata={"name": SYNC_NAME, "namespace": ns,
                      # the handover is proven when Flux has fetched the seeded repository
                      "annotations": {"pulumi.com/waitFor": "condition=Ready"}},
            spec={
                "interval": "1m",
                "url": gitea.clone_url,
                "ref": {"branch": "main"},
                "secretRef": {"name": CREDENTIALS_SECRET},
            },
            # why: Flux's CRDs and controllers exist (instance), the repository holds its first
            # commit (the seed Job has completed), and the deploy key is in place
            opts=cluster.in_cluster(self, depends_on=[instance, gitea.seed, credentials]),
        )
        k8s.apiextensions.CustomResource(
            f"{name}-kustomization",
            api_version="kustomize.toolkit.fluxcd.io/v1",
            kind="Kustomization",
            metadata={"name": SYNC_NAME, "namespace": ns},
            spec={
                "interval": "10m",
                "retryInterval": "1m",
                "path": f"./{cfg.flux.path}",
                "prune": True,
                "sourceRef": {"kind": "GitRepository", "name": SYNC_NAME},
                "decryption": {"provider": "sops", "secretRef": {"name": SOPS_SECRET}},
                "postBuild": {"substitute": substitutions(cfg)},
            },
            # why: it builds from the synced repository and decrypts with the age identity
            opts=cluster.in_cluster(self, depends_on=[repository, args.sops.secret]),
        )

        token = k8s.core.v1.Secret(
            f"{name}-webhook-token",
            metadata={"name": RECEIVER_SECRET, "namespace": ns},
            type="Opaque",
            string_data={"token": gitea.webhook_token},
            opts=in_cluster,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-receiver",
            api_version="notification.toolkit.fluxcd.io/v1",
            kind="Receiver",
            metadata={"name": RECEIVER_NAME, "namespace": ns},
            spec={
                "type": "github",  # Gitea signs its pushes GitHub-style (X-Hub-Signature)
                "events": ["ping", "push"],
                "secretRef": {"name": RECEIVER_SECRET},
                "resources": [{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                               "name": SYNC_NAME}],
            },
            # why: the Receiver CRD comes with the controllers; its token Secret must exist
            opts=cluster.in_cluster(self, depends_on=[instance, token]),
        )
        self.register_outputs({})
