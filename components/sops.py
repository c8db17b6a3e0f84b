"""Stage 5 — SopsAgeSecret: the age identity Flux decrypts the repository with, and `.sops.yaml`.

The identity is `sops.ageKey` when set, else 32 random bytes generated once and kept in state
(protected in prod): a cluster rebuilt from scratch still decrypts every secret in the repository.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import yaml

from components import age
from components.kube import InCluster

TYPE = "cluster-bootstrap:gitops:SopsAgeSecret"
SECRET_NAME = "sops-age"
SECRET_KEY = "age.agekey"  # the key name Flux's kustomize-controller looks for
ENCRYPTED_FILES = r"\.sops\.ya?ml$"
ENCRYPTED_FIELDS = "^(data|stringData)$"
# Flux's own labels for its namespace (what `flux install` puts on it).
NAMESPACE_LABELS = {
    "app.kubernetes.io/instance": "flux-system",
    "app.kubernetes.io/part-of": "flux",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/warn-version": "latest",
}


def sops_config(recipient: str) -> str:
    """`.sops.yaml`: files named *.sops.yaml are encrypted to the cluster, only data/stringData."""
    rules = {"creation_rules": [{"path_regex": ENCRYPTED_FILES, "encrypted_regex": ENCRYPTED_FIELDS,
                                 "age": recipient}]}
    return "# Written by cluster-bootstrap: files named *.sops.yaml are encrypted to this cluster.\n" + \
        yaml.safe_dump(rules, sort_keys=False)


@dataclass(frozen=True)
class SopsAgeSecretArgs:
    namespace: str  # Flux's namespace: this layer creates it, as the Secret must exist first
    cluster: InCluster
    after: Sequence[pulumi.Resource]  # the control plane
    age_key: Optional[pulumi.Input[str]] = None  # secret; None generates one, kept in state
    protect: bool = False


class SopsAgeSecret(pulumi.ComponentResource):
    """The `flux-system` namespace and its `sops-age` Secret; `recipient` is public."""

    recipient: pulumi.Output[str]
    sops_config: pulumi.Output[str]
    namespace: k8s.core.v1.Namespace
    secret: k8s.core.v1.Secret

    def __init__(self, name: str, args: SopsAgeSecretArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(TYPE, name, None, opts)
        cluster = args.cluster
        if args.age_key is not None:
            identity = pulumi.Output.secret(pulumi.Output.from_input(args.age_key).apply(str.strip))
        else:
            raw = random.RandomBytes(
                f"{name}-identity", length=32,
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
            )
            identity = pulumi.Output.secret(raw.base64.apply(lambda b: age.identity_from_bytes(base64.b64decode(b))))
        # The recipient is public by design: it goes into the repository's .sops.yaml.
        self.recipient = pulumi.Output.unsecret(identity.apply(age.recipient_of))
        self.sops_config = self.recipient.apply(sops_config)

        in_cluster = cluster.opts(self)
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": args.namespace, "labels": NAMESPACE_LABELS},
            # why: the namespace lives in the cluster, which exists once the control plane is up
            opts=cluster.opts(self, depends_on=args.after),
        )
        self.secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata={"name": SECRET_NAME, "namespace": self.namespace.metadata.name},
            type="Opaque",
            string_data={SECRET_KEY: identity.apply(lambda i: i + "\n")},
            opts=in_cluster,
        )
        self.register_outputs({"recipient": self.recipient})
