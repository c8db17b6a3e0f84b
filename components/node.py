"""Stage 1 — Node: one host reached over SSH, prepared, trusting the internal CA, k0s staged.

Phases, as k0sctl's: connect → prepare host → trust the CA → upload/verify the k0s binary.
Nothing here starts k0s: the K0sCluster layer activates the staged binary in rollout order.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_command as command

from components import remote

TYPE = "cluster-bootstrap:hosts:Node"
UPLOAD_DIR = "/var/lib/cluster-bootstrap/upload"


@dataclass(frozen=True)
class Jump:
    """A bastion every SSH connection goes through."""

    host: str
    port: int
    user: str
    host_key: Optional[str] = None  # 'type base64': the jump host's key, checked on every connection


@dataclass(frozen=True)
class SshAccess:
    """How Pulumi reaches one host over SSH."""

    address: str
    port: int
    user: str  # root, or a user with passwordless sudo
    private_key: Optional[pulumi.Input[str]]  # secret; None uses the operator's ssh-agent
    dial_error_limit: int
    per_dial_timeout: int
    bastion: Optional[Jump] = None
    host_key: Optional[str] = None  # 'type base64': checked on every connection; None: not verified


@dataclass(frozen=True)
class NodeArgs:
    hostname: str  # also the Kubernetes node name
    ssh: SshAccess
    runs_pods: bool  # a worker: it gets the airgap image bundle
    ca_cert_pem: pulumi.Input[str]
    registry_host: str
    k0s_version: str
    download_url: str
    sha256: Mapping[str, str] = field(default_factory=dict)
    binary_path: Optional[str] = None  # airgap: upload this k0s binary instead of downloading
    airgap_bundle: Optional[str] = None  # airgap: image bundle for workers
    gone: bool = False  # the host no longer exists: its steps are forgotten on delete, never dialled
    signs_s3: bool = False  # a step here signs S3 requests with curl (the backup restore): needs curl ≥ 7.87
    after: Sequence[pulumi.Resource] = ()  # what must pass before this host changes (the version check)


def connection(ssh: SshAccess) -> command.remote.ConnectionArgs:
    """SSH settings with dial timeouts and retries on every remote step, through the bastion if any."""
    proxy = None
    if ssh.bastion:
        proxy = command.remote.ProxyConnectionArgs(
            host=ssh.bastion.host,
            port=ssh.bastion.port,
            user=ssh.bastion.user,
            private_key=ssh.private_key,
            dial_error_limit=ssh.dial_error_limit,
            per_dial_timeout=ssh.per_dial_timeout,
            host_key=ssh.bastion.host_key,
        )
    return command.remote.ConnectionArgs(
        host=ssh.address,
        port=ssh.port,
        user=ssh.user,
        private_key=ssh.private_key,
        dial_error_limit=ssh.dial_error_limit,
        per_dial_timeout=ssh.per_dial_timeout,
        proxy=proxy,
        host_key=ssh.host_key,
    )


def host_of(ssh: SshAccess, gone: bool = False) -> remote.Host:
    """How steps reach a host: its connection, sudo unless the user is root."""
    return remote.Host(connection=connection(ssh), sudo=ssh.user != "root", gone=gone)


class Node(pulumi.ComponentResource):
    """One host. `host` is how later layers run commands on it."""

    host: remote.Host

    def __init__(self, name: str, args: NodeArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(TYPE, name, None, opts)
        self.host = host_of(args.ssh, args.gone)
        # why: no host changes before every host's running k0s allows the pinned version
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        prepared = remote.run(
            f"{name}-prepare",
            self.host,
            "prepare-host.sh",
            env={"NODE_NAME": args.hostname, "UPLOAD_OWNER": args.ssh.user, "UPLOAD_DIR": UPLOAD_DIR,
                 **({"CURL_SIGV4": "true"} if args.signs_s3 else {})},
            opts=child,
        )
        after_prepare = pulumi.ResourceOptions(
            parent=self,
            # why: the OS is known to be supported and the tools and upload directory exist
            depends_on=[prepared],
        )
        ca_env = {"REGISTRY_HOST": args.registry_host}
        remote.run(
            f"{name}-trust-ca",
            self.host,
            "trust-ca.sh",
            env={
                **ca_env,
                "CA_CERT_B64": pulumi.Output.from_input(args.ca_cert_pem).apply(
                    lambda pem: base64.b64encode(pem.encode()).decode()
                ),
            },
            delete=("trust-ca.sh", {**ca_env, "ACTION": "remove"}),
            opts=after_prepare,
        )
        stage_env: dict[str, pulumi.Input[str]] = {
            "K0S_VERSION": args.k0s_version,
            "K0S_URL": args.download_url,
            "K0S_SHA256": " ".join(f"{arch}={digest}" for arch, digest in sorted(args.sha256.items())),
        }
        uploads = []
        if args.binary_path:
            target = f"{UPLOAD_DIR}/k0s-{args.k0s_version}"
            uploads.append(self._upload(f"{name}-upload-k0s", args.binary_path, target, after_prepare))
            stage_env["K0S_UPLOADED"] = target
        if args.airgap_bundle and args.runs_pods:
            target = f"{UPLOAD_DIR}/airgap-bundle.tar"
            uploads.append(self._upload(f"{name}-upload-images", args.airgap_bundle, target, after_prepare))
            stage_env["AIRGAP_BUNDLE_UPLOADED"] = target
        remote.run(
            f"{name}-stage-k0s",
            self.host,
            "stage-k0s.sh",
            env=stage_env,
            opts=pulumi.ResourceOptions(
                parent=self,
                # why: host prepared; with airgap, the binary and image bundle are uploaded first
                depends_on=[prepared, *uploads],
            ),
        )
        self.register_outputs({})

    def _upload(self, resource_name: str, source: str, target: str, opts: pulumi.ResourceOptions):
        return command.remote.CopyToRemote(
            resource_name,
            connection=self.host.connection,
            source=pulumi.FileAsset(source),
            remote_path=target,
            opts=pulumi.ResourceOptions.merge(opts, self.host.gone_options()),
        )
