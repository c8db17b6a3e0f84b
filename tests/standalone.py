"""Build one component from its Args alone, under the mock monitor: no stack, no config model.

What a layer needs from the outside is made here from plain values, as another Pulumi program
would make it."""

from __future__ import annotations

from typing import Callable

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import remote
from components.kube import InCluster
from tooling import offline
from tooling.offline import Recording


def cluster() -> InCluster:
    """A Kubernetes provider and an anchor resource, as a cluster made elsewhere would give them."""
    provider = k8s.Provider("test-cluster", kubeconfig="apiVersion: v1\nkind: Config\nclusters: []\n")
    return InCluster(provider=provider, anchor=random.RandomId("test-anchor", byte_length=4))


def host(address: str = "192.0.2.50") -> remote.Host:
    return remote.Host(connection=command.remote.ConnectionArgs(host=address, user="root"), sudo=False)


def marker(name: str = "test-before") -> pulumi.Resource:
    """Something a component is told to come after."""
    return random.RandomId(name, byte_length=4)


def build(program: Callable[[], object], preview: bool = False) -> Recording:
    return offline.run_function(program, stack="standalone", preview=preview)
