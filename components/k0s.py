"""Stage 2 — K0sCluster: k0s config, first controller, tokens, joins, rollouts, kubeconfig, k8s Provider.

Rollout order, as k0sctl's: first controller → further controllers one at a time (etcd joins and
upgrades never overlap) → every worker joins in parallel → workers restarted in batches of
`worker_disruption_percent` (k0sctl's workerDisruptionPercent), each cordoned and drained before
its restart and uncordoned once Ready. Per node:

  token (first controller) → reset (armed on the node) → join (the node) → [workers: drain (first
  controller) → rollout (the node)] → ready (first controller: token invalidated, labels in step,
  Node uncordoned)

Removing a node deletes these in reverse: its Node is drained and deleted, then the node leaves
etcd (controllers) and k0s is reset. `pulumi destroy` does the same for every node. The reset is
its own step, `reset` (before `join`), so a node whose first join failed is still reset.

The first controller in the list is the one that mints tokens and signs the kubeconfig (every
joined controller holds the cluster CA's key). It creates the cluster only on a fresh stack: any
member may move to the front when the one before it leaves, but a node that is not a member
refuses to (k0s-node.sh probes PEERS).
"""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components import remote
from components.bucket import BackupAccess
from components.kube import InCluster

TYPE = "cluster-bootstrap:k0s:K0sCluster"
TOKEN_EXPIRY_SECONDS = 7200  # a join token lives this long if unused; it is invalidated right after its join
ADMIN_USER = "cluster-bootstrap"  # the identity of the kubeconfig Pulumi uses (group system:masters)


@dataclass(frozen=True)
class Member:
    """One node as the control plane sees it, in rollout order."""

    name: str
    role: str  # controller | worker | controller+worker
    host: remote.Host
    ready: pulumi.Resource  # its Node layer: host prepared, CA trusted, k0s staged
    labels: Mapping[str, str] = field(default_factory=dict)
    private_address: Optional[str] = None  # carries cluster traffic: etcd peers, the API, the kubelet's IP
    address: Optional[str] = None  # where the host is reached; with private_address, where its API is

    @property
    def cluster_address(self) -> Optional[str]:
        return self.private_address or self.address

    @property
    def is_controller(self) -> bool:
        return self.role != "worker"

    @property
    def runs_pods(self) -> bool:
        return self.role != "controller"


@dataclass(frozen=True)
class Restore:
    """k0s.restoreFrom: the first controller restores etcd and the PKI from this backup first."""

    source: str  # latest, or an object key etcd/<node>/<time>.tar.gz.age
    access: "BackupAccess"
    age_identity: pulumi.Input[str]  # secret: what the backups are encrypted to


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
    worker_disruption_percent: int = 10
    kubeconfig_renewal: pulumi.Input[str] = ""  # a new value mints a new client certificate (1 year)
    hosts_gone: bool = False  # forget the cluster's objects on destroy instead of reaching them
    restore: Optional[Restore] = None  # k0s.restoreFrom


def k0s_config(args: K0sClusterArgs, member: Member) -> dict:
    """The ClusterConfig of one controller: shared settings, and its own addresses when the node
    has a private address (k0sctl's per-host spec.storage.etcd.peerAddress, and spec.api.address)."""
    api: dict = {"sans": list(args.api_sans)}
    if args.external_address:
        api["externalAddress"] = args.external_address
    if member.private_address:
        api["address"] = member.private_address
    network: dict = {
        "provider": "custom",  # Cilium, installed by the next stage
        "podCIDR": args.pod_cidr,
        "serviceCIDR": args.service_cidr,
        "kubeProxy": {"disabled": True},  # Cilium replaces kube-proxy
    }
    if args.node_local_load_balancing:
        network["nodeLocalLoadBalancing"] = {"enabled": True, "type": "EnvoyProxy"}
    spec: dict = {"api": api, "network": network, "telemetry": {"enabled": False}}
    if member.private_address:
        spec["storage"] = {"type": "etcd", "etcd": {"peerAddress": member.private_address}}
    if args.airgap:
        spec["images"] = {"default_pull_policy": "Never"}
    return {"apiVersion": "k0s.k0sproject.io/v1beta1", "kind": "ClusterConfig", "metadata": {"name": "k0s"}, "spec": spec}


def batches(workers: Sequence[Member], percent: int) -> list[list[Member]]:
    """Workers in restart batches of floor(count × percent / 100), at least one (k0sctl's rule)."""
    size = max(1, math.floor(len(workers) * percent / 100))
    return [list(workers[i:i + size]) for i in range(0, len(workers), size)]


def rollout_id(args: K0sClusterArgs, member: Member) -> str:
    """What a worker's running k0s must match; a change restarts it (drained first): the version,
    node-local load balancing (running workers must restart to use it), its kubelet's node IP."""
    parts = [args.version, f"nllb={args.node_local_load_balancing}", f"node-ip={member.private_address or ''}"]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def point_kubeconfig(raw: str, server: str, proxy: Optional[str]) -> str:
    """A kubeconfig from k0s aimed at `server`, through `proxy` (a kubeconfig proxy-url) if set.

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
    kubeconfig_renewal: pulumi.Output[str]  # the key the kubeconfig step was last run with
    api_endpoint: str
    provider: k8s.Provider
    cluster: InCluster  # how later layers create objects in the cluster
    admin_host: remote.Host  # the first controller: where `k0s kubectl` runs

    def __init__(self, name: str, args: K0sClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(TYPE, name, None, opts)
        controllers = [m for m in args.members if m.is_controller]
        workers = [m for m in args.members if not m.is_controller]
        first, *other_controllers = controllers
        self.admin_host = admin = first.host

        def step(suffix: str, host: remote.Host, script: str, depends_on: list, **kwargs) -> pulumi.Resource:
            return remote.run(f"{name}-{suffix}", host, script,
                              opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on), **kwargs)

        def token(member: Member, after: pulumi.Resource):
            """A join token for one node only, minted by the running first controller."""
            role = "controller" if member.is_controller else "worker"
            return step(f"{member.name}-token", admin, "k0s-token.sh",
                        env={"TOKEN_ROLE": role, "TOKEN_EXPIRY_SECONDS": str(TOKEN_EXPIRY_SECONDS),
                             "NODE": member.name},
                        secret_output=True,
                        # why: the first controller serves the API that mints tokens
                        depends_on=[after])

        def join(member: Member, token_step, depends_on: list) -> pulumi.Resource:
            env = {"ROLE": member.role, "K0S_VERSION": args.version, "FIRST": str(member is first).lower()}
            if member is first:  # a fresh first controller refuses to start a second cluster beside these
                env["PEERS"] = " ".join(m.cluster_address for m in other_controllers if m.cluster_address)
            if member.is_controller:
                config = yaml.safe_dump(k0s_config(args, member), sort_keys=True)
                env["K0S_CONFIG_B64"] = base64.b64encode(config.encode()).decode()
            else:
                env["ROLLOUT"] = rollout_id(args, member)
            if member.runs_pods and member.private_address:
                env["KUBELET_NODE_IP"] = member.private_address
            if token_step is not None:
                env["TOKEN_URN"] = token_step.urn
            # The node's reset is a step of its own, created before anything is installed: a join
            # that fails is not recorded in state (pulumi-command keeps no state of a failed
            # create), so a reset carried by the join step itself would never run for that node.
            reset = step(f"{member.name}-reset", member.host, "k0s-reset-armed.sh", depends_on,
                         delete=("k0s-reset.sh", {"ROLE": member.role,
                                                  "REBOOT": str(args.reboot_after_reset).lower()}))
            # why: the reset is in state before k0s is installed (a leaving node is reset after its
            # join step, and what follows it, is gone); and the join's own order
            return step(member.name, member.host, "k0s-node.sh", [reset, *depends_on],
                        env=env,
                        secret_env={"JOIN_TOKEN": token_step.stdout} if token_step is not None else None)

        def ready(member: Member, token_step, depends_on: list) -> pulumi.Resource:
            """After a join or restart: the token invalidated, the Node uncordoned and its labels in
            step. Deleting it (the node leaves) drains and deletes the Node first, as k0sctl's reset
            does; not the first controller's: the cluster goes with it."""
            node = member.name if member.runs_pods else ""
            leaves = bool(node) and member is not first
            env = {"ACTION": "ready", "NODE": node,
                   "LABELS": ",".join(f"{k}={v}" for k, v in sorted(member.labels.items())),
                   "ROLLOUT": rollout_id(args, member) if not member.is_controller else ""}
            return step(f"{member.name}-ready", admin, "k8s-node.sh", depends_on, env=env,
                        secret_env={"JOIN_TOKEN": token_step.stdout} if token_step is not None else None,
                        delete=("k8s-node.sh", {"ACTION": "remove", "NODE": node}) if leaves else None)

        first_after: list[pulumi.Resource] = [first.ready]
        if args.restore is not None:
            restore = args.restore
            first_after.append(step(
                f"{first.name}-restore", first.host, "k0s-restore.sh",
                env={"RESTORE_FROM": restore.source, "K0S_VERSION": args.version,
                     "S3_URL": restore.access.url, "S3_REGION": restore.access.region},
                secret_env={"AWS_ACCESS_KEY_ID": restore.access.access_key_id,
                            "AWS_SECRET_ACCESS_KEY": restore.access.secret_access_key,
                            "AGE_IDENTITY": restore.age_identity},
                # why: `k0s restore` runs the staged binary on a prepared host, before k0s is installed
                depends_on=[first.ready]))
        # why: the host is prepared, trusts the CA, and has this k0s version staged; with
        # k0s.restoreFrom, etcd and the PKI are restored first (k0s then starts the restored etcd)
        self.anchor = first_install = join(first, None, depends_on=first_after)
        step_of: dict[str, pulumi.Resource] = {first.name: first_install}
        # why: labels and the Node's schedulability follow the first controller's join
        ready(first, None, depends_on=[first_install])

        previous = first_install
        for member in other_controllers:
            minted = token(member, first_install)
            # why: etcd members join (and upgrade) one at a time; the node's host phases are done
            previous = step_of[member.name] = join(member, minted, depends_on=[previous, member.ready])
            # why: the token is spent once this controller has joined
            ready(member, minted, depends_on=[previous])

        tokens = {m.name: token(m, first_install) for m in workers}
        for member in workers:
            # why: workers follow the whole control plane (rollout order) but never each other
            step_of[member.name] = join(member, tokens[member.name], depends_on=[previous, member.ready])

        before: list[pulumi.Resource] = []  # the previous batch's ready steps
        for batch in batches(workers, args.worker_disruption_percent):
            current = []
            for member in batch:
                rollout = rollout_id(args, member)
                drained = step(f"{member.name}-drain", admin, "k8s-node.sh",
                               env={"ACTION": "drain", "NODE": member.name, "ROLLOUT": rollout},
                               # why: restarts go batch by batch, each after the previous is Ready
                               # again; and only after this node has joined
                               depends_on=[step_of[member.name], *before])
                restarted = step(f"{member.name}-rollout", member.host, "k0s-rollout.sh",
                                 env={"K0S_VERSION": args.version, "ROLLOUT": rollout,
                                      "KUBELET_NODE_IP": member.private_address or ""},
                                 # why: the node's pods were moved away first
                                 depends_on=[drained])
                # why: uncordon once the restarted node is Ready; the token is spent by then
                current.append(ready(member, tokens[member.name], depends_on=[restarted]))
            before = current

        self.api_endpoint = args.api_endpoint
        self.kubeconfig_renewal = pulumi.Output.from_input(args.kubeconfig_renewal)
        issued = step("kubeconfig", admin, "k0s-kubeconfig.sh",
                      env={"ADMIN_USER": ADMIN_USER, "RENEWAL": args.kubeconfig_renewal},
                      secret_output=True,
                      # why: the first controller's CA signs the client certificate
                      depends_on=[first_install])
        self.kubeconfig = pulumi.Output.secret(
            issued.stdout.apply(lambda raw: point_kubeconfig(raw, args.api_endpoint, args.api_proxy)))
        self.provider = k8s.Provider(
            f"{name}-provider",
            kubeconfig=self.kubeconfig,
            # The provider's identity is this stack's cluster, not its kubeconfig: a new endpoint,
            # proxy or client certificate is an update, never a replacement of every in-cluster
            # object (pulumi-kubernetes DiffConfig replaces on any change of the active cluster
            # unless clusterIdentifier is set and unchanged).
            cluster_identifier=args.cluster_identifier,
            delete_unreachable=args.delete_unreachable or args.hosts_gone,
            # Hosts gone: `pulumi up` leaves in-cluster objects as they are in state (with the cluster
            # unreachable, the provider's Check returns the old inputs); `pulumi destroy` then makes no
            # call for them either: they are deletedWith the first controller's step, which goes too.
            skip_update_unreachable=True if args.hosts_gone else None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.cluster = InCluster(provider=self.provider, anchor=self.anchor)
        self.register_outputs({"apiEndpoint": self.api_endpoint, "kubeconfig": self.kubeconfig})
