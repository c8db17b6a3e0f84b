"""The Gitea↔Flux handover: what the seeded Gitea registers and Flux serves, computed once here.

Gitea generates Flux's credentials (deploy key, webhook token) and registers the webhook at the
path Flux's notification-controller serves its Receiver on; Flux consumes them. Both layers import
this module, neither imports the other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pulumi

FLUX_NAMESPACE = "flux-system"  # Flux's controllers, its sync objects and the age Secret live here
RECEIVER_NAME = "gitea"
RECEIVER_SERVICE = "webhook-receiver"  # notification-controller's Service (port 80)
GIT_NAMESPACE = "gitea"
SSH_PORT = 2222  # Gitea's built-in SSH server in the rootless image; the chart's ssh Service is headless
BRANCH = "main"


def receiver_host() -> str:
    return f"{RECEIVER_SERVICE}.{FLUX_NAMESPACE}.svc.cluster.local"


def receiver_path(token: str, name: str = RECEIVER_NAME, namespace: str = FLUX_NAMESPACE) -> str:
    """The path notification-controller serves a Receiver on: /hook/sha256(token+name+namespace)."""
    return "/hook/" + hashlib.sha256((token + name + namespace).encode()).hexdigest()


def webhook_url(token: str) -> str:
    """Where Gitea's push webhook goes: the Receiver, inside the cluster."""
    return f"http://{receiver_host()}{receiver_path(token)}"


def ssh_host() -> str:
    return f"gitea-ssh.{GIT_NAMESPACE}.svc.cluster.local"


def clone_url(org: str, repo: str) -> str:
    """The in-cluster SSH clone URL Flux uses."""
    return f"ssh://git@{ssh_host()}:{SSH_PORT}/{org}/{repo}.git"


def known_hosts(public_key_openssh: str) -> str:
    """The one known_hosts line for Gitea's pinned host key (no trust on first use)."""
    return f"[{ssh_host()}]:{SSH_PORT} {' '.join(public_key_openssh.split()[:2])}\n"


@dataclass(frozen=True)
class GitSource:
    """What Flux needs to read the seeded repository, as Gitea produced it."""

    url: str
    branch: str
    known_hosts: pulumi.Output[str]
    deploy_key_private: pulumi.Output[str]  # secret
    deploy_key_public: pulumi.Output[str]
    webhook_token: pulumi.Output[str]  # secret
    seeded: pulumi.Resource  # the seed Job: the repository holds its first commit
