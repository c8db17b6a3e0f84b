"""Stage 5 — Flux: the Flux Operator and a FluxInstance, syncing `flux.path` from the in-cluster Gitea.

Pulumi owns the controllers, the GitRepository, the root Kustomization and the Receiver (and the
Secrets they read); Flux owns everything in the repository. Nothing is owned by both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components import remote
from components.handover import RECEIVER_NAME, GitSource
from components.kube import InCluster

TYPE = "cluster-bootstrap:gitops:Flux"
OPERATOR_CHART = "oci://ghcr.io/controlplaneio-fluxcd/charts/flux-operator"
REGISTRY = "ghcr.io/fluxcd"
COMPONENTS = ["source-controller", "kustomize-controller", "helm-controller", "notification-controller"]
SYNC_NAME = "flux-system"  # the GitRepository and the root Kustomization (Flux's convention)
CREDENTIALS_SECRET = "gitea-deploy-key"
RECEIVER_SECRET = "gitea-webhook-token"


@dataclass(frozen=True)
class FluxArgs:
    operator_version: str
    flux_version: str  # the FluxInstance's distribution: exact, so the operator never upgrades it
    cluster: InCluster
    namespace: pulumi.Output[str]  # Flux's namespace (SopsAgeSecret's)
    namespace_ready: pulumi.Resource
    decryption_secret: str  # the age identity's Secret in that namespace
    decryption_ready: pulumi.Resource
    source: GitSource  # the seeded repository
    path: str  # what the root Kustomization reconciles
    substitutions: Mapping[str, str]  # ${VAR}s the repository's manifests use
    after: Sequence[pulumi.Resource]  # the pod network
    admin_host: remote.Host  # a controller, where the wait for the first sync runs (`k0s kubectl`)


class Flux(pulumi.ComponentResource):
    """Flux controllers and the objects that point them at the seeded repository."""

    def __init__(self, name: str, args: FluxArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(TYPE, name, None, opts)
        cluster, source = args.cluster, args.source
        in_cluster = cluster.opts(self)
        ns = args.namespace

        operator = k8s.helm.v3.Release(
            f"{name}-operator",
            name="flux-operator",
            chart=OPERATOR_CHART,
            version=args.operator_version,
            namespace=ns,
            atomic=True,
            timeout=600,
            # why: the operator runs on the pod network (Cilium) in the namespace SopsAgeSecret owns
            opts=cluster.opts(self, depends_on=[*args.after, args.namespace_ready]),
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
                "distribution": {"version": args.flux_version, "registry": REGISTRY},
                "components": COMPONENTS,
                "cluster": {"type": "kubernetes", "networkPolicy": True, "domain": "cluster.local"},
            },
            # why: the operator installs the FluxInstance CRD and reconciles it
            opts=cluster.opts(self, depends_on=[operator]),
        )

        credentials = k8s.core.v1.Secret(
            f"{name}-gitea-credentials",
            metadata={"name": CREDENTIALS_SECRET, "namespace": ns},
            type="Opaque",
            string_data={
                "identity": source.deploy_key_private,
                "identity.pub": source.deploy_key_public,
                "known_hosts": source.known_hosts,
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
                "url": source.url,
                "ref": {"branch": source.branch},
                "secretRef": {"name": CREDENTIALS_SECRET},
            },
            # why: Flux's CRDs and controllers exist (instance), the repository holds its first
            # commit (the seed Job has completed), and the deploy key is in place
            opts=cluster.opts(self, depends_on=[instance, source.seeded, credentials]),
        )
        kustomization = k8s.apiextensions.CustomResource(
            f"{name}-kustomization",
            api_version="kustomize.toolkit.fluxcd.io/v1",
            kind="Kustomization",
            metadata={"name": SYNC_NAME, "namespace": ns},
            spec={
                "interval": "10m",
                "retryInterval": "1m",
                "path": f"./{args.path}",
                "prune": True,
                "sourceRef": {"kind": "GitRepository", "name": SYNC_NAME},
                "decryption": {"provider": "sops", "secretRef": {"name": args.decryption_secret}},
                "postBuild": {"substitute": dict(args.substitutions)},
            },
            # why: it builds from the synced repository and decrypts with the age identity
            opts=cluster.opts(self, depends_on=[repository, args.decryption_ready]),
        )
        # `pulumi up` ends when Flux has applied the first sync; if it cannot, the error quotes
        # Flux's own Ready message (pulumi.com/waitFor would only say Ready=False).
        remote.run(
            f"{name}-synced",
            args.admin_host,
            "k8s-wait.sh",
            env={"READY": pulumi.Output.concat("kustomization/", ns, "/", SYNC_NAME),
                 "SOURCE": source.url, "PATH_IN_REPO": args.path},
            # why: waits for the root Kustomization just created
            opts=pulumi.ResourceOptions(parent=self, depends_on=[kustomization]),
        )

        token = k8s.core.v1.Secret(
            f"{name}-webhook-token",
            metadata={"name": RECEIVER_SECRET, "namespace": ns},
            type="Opaque",
            string_data={"token": source.webhook_token},
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
            opts=cluster.opts(self, depends_on=[instance, token]),
        )
        self.register_outputs({})
