"""Stage 5 — Gitea: a minimal in-cluster git server, seeded for Flux by an in-cluster Job.

This breaks the git-server/Flux circle: Pulumi installs Gitea, a Job creates the org, the private
repository, Flux's read-only deploy key and the webhook to Flux's Receiver, and pushes `gitops/`
as the first commit while the repository is empty. From then on the repository is Flux's.

With backups, Gitea's pod starts with an init container that puts a staged `gitea dump` in place
(components/jobs/gitea-restore-init.sh, a no-op unless something is staged), and
`gitea.restoreFrom` stages one from the bucket before the seed Job runs (gitea-restore.sh).
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import pulumi_tls as tls

from components import handover, remote, shell
from components.bucket import BackupAccess
from components.handover import BRANCH, SSH_PORT, GitSource
from components.kube import JOB_CONTAINER_SECURITY, JOB_POD_SECURITY, InCluster, from_secret

TYPE = "cluster-bootstrap:gitops:Gitea"
REPOSITORY = "https://dl.gitea.com/charts/"
NAMESPACE = handover.GIT_NAMESPACE
ADMIN_USER = "cluster-bootstrap"  # "admin" is reserved by Gitea
ADMIN_SECRET = "gitea-admin"
HOST_KEY_SECRET = "gitea-ssh-host-key"
HOST_KEY_DIR = "/etc/gitea-ssh"
HTTP_PORT = 3000
# The seed Job's tools (sh, curl, git, tar): Gitea's rootless image, at the app version pinned.
TOOLS_IMAGE = "docker.io/gitea/gitea:{version}-rootless"
SEED_SCRIPT = Path(__file__).resolve().parent / "jobs" / "gitea-seed.sh"  # runs in the cluster
RESTORE_INIT_SCRIPT = Path(__file__).resolve().parent / "jobs" / "gitea-restore-init.sh"  # Gitea's pod
RESTORE_INIT_CONFIG = "gitea-restore-init"  # the ConfigMap holding it
# The restore init container needs sqlite3: Gitea's root image (same release) installs Alpine's
# sqlite, the rootless one does not (Dockerfile vs Dockerfile.rootless at the app version).
RESTORE_IMAGE = "docker.io/gitea/gitea:{version}"
# Where the chart puts things: the volume at /data, which is Gitea's APP_DATA_PATH (its helpers'
# default), repositories in /data/git/gitea-repositories (repository.ROOT), and Gitea's own default
# SQLite file <APP_DATA_PATH>/gitea.db (modules/setting/database.go); the server's container is
# named after the chart, its pods carry the chart's selector labels.
DATA = "/data"
REPO_ROOT = "/data/git/gitea-repositories"
DB_PATH = "/data/gitea.db"
CONTAINER = "gitea"
SELECTOR = "app.kubernetes.io/name=gitea,app.kubernetes.io/instance=gitea"


def http_url() -> str:
    return f"http://gitea-http.{NAMESPACE}.svc.cluster.local:{HTTP_PORT}"


SEED_LABELS = {"app.kubernetes.io/name": "gitea-seed", "app.kubernetes.io/part-of": "cluster-bootstrap"}


def gitops_archive(root: Path) -> bytes:
    """gitops/ as a reproducible tar: same content, same bytes (sorted, no times or owners). Not
    compressed: deflate output differs between zlib builds (zlib-ng, as Fedora 40 ships it, by
    design), and these bytes are an input of the ConfigMap and the Job's digest."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            data = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def restore_init_container(app_version: str) -> dict:
    """The first init container (before the chart's): a staged dump put in place, else nothing."""
    return {
        "name": "restore",
        "image": RESTORE_IMAGE.format(version=app_version),
        "command": ["/bin/sh", f"/restore/{RESTORE_INIT_SCRIPT.name}"],
        "env": [{"name": "DATA", "value": DATA}, {"name": "REPO_ROOT", "value": REPO_ROOT},
                {"name": "DB_PATH", "value": DB_PATH}, {"name": "TMPDIR", "value": "/tmp"}],
        "volumeMounts": [{"name": "data", "mountPath": DATA},  # the chart's volume
                         {"name": "temp", "mountPath": "/tmp"},  # the chart's emptyDir
                         {"name": RESTORE_INIT_CONFIG, "mountPath": "/restore", "readOnly": True}],
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                            **JOB_CONTAINER_SECURITY},
    }


def helm_values(domain: str, storage_class: str, app_version: str, restorable: bool = False) -> dict:
    """Chart values: one replica on sqlite, no external caches or databases, pinned SSH host key;
    `restorable`: the restore init container first."""
    restore = {
        "preExtraInitContainers": [restore_init_container(app_version)],
    } if restorable else {}
    extra_volumes = [{"name": "ssh-host-key", "secret": {"secretName": HOST_KEY_SECRET, "defaultMode": 0o440}}]
    if restorable:
        extra_volumes.append({"name": RESTORE_INIT_CONFIG,
                              "configMap": {"name": RESTORE_INIT_CONFIG, "defaultMode": 0o444}})
    return {
        **restore,
        # Gitea itself at the pinned app version (the chart's default is its own appVersion); the
        # seed Job's tools image is the same version.
        "image": {"tag": app_version},
        "replicaCount": 1,
        "strategy": {"type": "Recreate"},  # one pod owns the ReadWriteOnce volume
        "persistence": {"enabled": True, "size": "10Gi", "storageClass": storage_class},
        "postgresql": {"enabled": False},
        "postgresql-ha": {"enabled": False},
        "valkey": {"enabled": False},
        "valkey-cluster": {"enabled": False},
        # http: a ClusterIP Service the ingress can route to; ssh: headless, straight to the pod's port.
        "service": {"http": {"port": HTTP_PORT, "clusterIP": ""}, "ssh": {"port": SSH_PORT, "clusterIP": "None"}},
        "extraVolumes": extra_volumes,
        "extraContainerVolumeMounts": [{"name": "ssh-host-key", "mountPath": HOST_KEY_DIR, "readOnly": True}],
        "gitea": {
            "admin": {"existingSecret": ADMIN_SECRET, "email": f"{ADMIN_USER}@{domain}",
                      "passwordMode": "keepUpdated"},
            "config": {
                "database": {"DB_TYPE": "sqlite3"},
                "session": {"PROVIDER": "memory"},
                "cache": {"ADAPTER": "memory"},
                "queue": {"TYPE": "level"},
                "indexer": {"ISSUE_INDEXER_TYPE": "bleve", "REPO_INDEXER_ENABLED": False},
                "server": {
                    "DOMAIN": f"git.{domain}",
                    "ROOT_URL": f"https://git.{domain}/",
                    "SSH_DOMAIN": handover.ssh_host(),
                    "SSH_PORT": SSH_PORT,
                    "SSH_LISTEN_PORT": SSH_PORT,
                    "SSH_SERVER_HOST_KEYS": f"{HOST_KEY_DIR}/ssh_host_ed25519_key",
                    "OFFLINE_MODE": True,
                },
                "service": {"DISABLE_REGISTRATION": True, "REQUIRE_SIGNIN_VIEW": True},
                "repository": {"DEFAULT_PRIVATE": "private", "DEFAULT_BRANCH": BRANCH},
                # Webhooks may only call Flux's Receiver (Gitea blocks in-cluster targets by default).
                "webhook": {"ALLOWED_HOST_LIST": handover.receiver_host()},
            },
        },
    }


@dataclass(frozen=True)
class GiteaRestore:
    """gitea.restoreFrom: a whole Gitea put back from a backup before the seed Job runs."""

    source: str  # latest, or an object key gitea/<time>.tar.gz.age
    age_identity: pulumi.Input[str]  # secret: what the backups are encrypted to
    admin_host: remote.Host  # runs `k0s kubectl` (the first controller)


@dataclass(frozen=True)
class GiteaArgs:
    chart_version: str
    app_version: str  # Gitea itself (the server's image tag) and the seed Job's tools image
    domain: str  # Gitea's public name is git.<domain> (exposed later by Flux)
    org: str
    repo: str
    storage_class: str  # where Gitea's volume is provisioned
    sops_config: pulumi.Input[str]  # the repository's .sops.yaml (from SopsAgeSecret)
    seed_dir: Path  # what the first commit holds (pushed only while the repository is empty)
    cluster: InCluster
    after: Sequence[pulumi.Resource]  # the pod network
    storage_ready: Sequence[pulumi.Resource] = ()  # the layer providing the class (none: the user's own)
    backup: Optional[BackupAccess] = None  # an empty repository is restored from the latest backup here
    restore: Optional[GiteaRestore] = None  # needs `backup`


class Gitea(pulumi.ComponentResource):
    """Gitea, its seeded repository, and the credentials Flux reads it with."""

    source: GitSource  # what Flux reads the seeded repository with
    namespace: pulumi.Output[str]
    tools_image: str  # sh, curl, git: what the seed Job (and the backup job) run
    admin_secret: str  # its admin account: keys username, password
    http_url: str  # its API and git over HTTP, inside the cluster

    def __init__(self, name: str, args: GiteaArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(TYPE, name, None, opts)
        cluster = args.cluster
        child = pulumi.ResourceOptions(parent=self)

        # Keys and passwords: generated once, kept in state, secret everywhere.
        password = random.RandomPassword(f"{name}-admin-password", length=32, special=False, opts=child)
        token = random.RandomPassword(f"{name}-webhook-token", length=40, special=False, opts=child)
        # (the SDK registers each private key output as a secret output)
        host_key = tls.PrivateKey(f"{name}-host-key", algorithm="ED25519", opts=child)
        deploy_key = tls.PrivateKey(f"{name}-flux-deploy-key", algorithm="ED25519", opts=child)
        webhook_token = pulumi.Output.secret(token.result)

        in_cluster = cluster.opts(self)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": NAMESPACE},
            # why: stage order: the git server runs on the pod network (Cilium)
            opts=cluster.opts(self, depends_on=args.after),
        )
        ns = namespace.metadata.name
        admin = k8s.core.v1.Secret(
            f"{name}-admin",
            metadata={"name": ADMIN_SECRET, "namespace": ns},
            type="Opaque",
            string_data={"username": ADMIN_USER, "password": pulumi.Output.secret(password.result)},
            opts=in_cluster,
        )
        host_key_secret = k8s.core.v1.Secret(
            f"{name}-ssh-host-key",
            metadata={"name": HOST_KEY_SECRET, "namespace": ns},
            type="Opaque",
            string_data={"ssh_host_ed25519_key": pulumi.Output.secret(host_key.private_key_openssh),
                         "ssh_host_ed25519_key.pub": host_key.public_key_openssh},
            opts=in_cluster,
        )
        restore_init = []
        if args.backup is not None:
            restore_init.append(k8s.core.v1.ConfigMap(
                f"{name}-restore-init",
                metadata={"name": RESTORE_INIT_CONFIG, "namespace": ns,
                          "labels": {**SEED_LABELS, "app.kubernetes.io/name": RESTORE_INIT_CONFIG}},
                data={RESTORE_INIT_SCRIPT.name: shell.assemble(RESTORE_INIT_SCRIPT)},
                opts=in_cluster,
            ))
        release = k8s.helm.v3.Release(
            f"{name}-release",
            name="gitea",
            chart="gitea",
            version=args.chart_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=REPOSITORY),
            namespace=ns,
            values=helm_values(args.domain, args.storage_class, args.app_version, restorable=bool(restore_init)),
            atomic=True,
            timeout=900,
            # why: the pod mounts both Secrets at start (admin account, SSH host key) and the
            # restore init container's script, needs the pod network, and Helm waits for its
            # volume to be bound by the storage layer's provisioner
            opts=cluster.opts(self, depends_on=[admin, host_key_secret, *restore_init, *args.after,
                                                *args.storage_ready]),
        )
        restored = []
        if args.restore is not None and args.backup is not None:
            restored.append(remote.run(
                f"{name}-restore", args.restore.admin_host, "gitea-restore.sh",
                env={"RESTORE_FROM": args.restore.source, "NAMESPACE": NAMESPACE, "SELECTOR": SELECTOR,
                     "CONTAINER": CONTAINER, "DATA": DATA, "REPO_ROOT": REPO_ROOT,
                     "S3_URL": args.backup.url, "S3_REGION": args.backup.region},
                secret_env={"AWS_ACCESS_KEY_ID": args.backup.access_key_id,
                            "AWS_SECRET_ACCESS_KEY": args.backup.secret_access_key,
                            "AGE_IDENTITY": args.restore.age_identity},
                # why: it stages the dump in the running Gitea's volume and recreates its pod
                opts=pulumi.ResourceOptions(parent=self, depends_on=[release])))

        # The seed: content and script in a ConfigMap (replaced, with a new name, when they change,
        # which replaces the Job), settings in the Job, credentials in Secrets.
        archive = gitops_archive(args.seed_dir)
        script = shell.assemble(SEED_SCRIPT)
        digest = hashlib.sha256(archive + script.encode()).hexdigest()
        content = k8s.core.v1.ConfigMap(
            f"{name}-seed-content",
            metadata={"namespace": ns, "labels": SEED_LABELS},
            data={"gitea-seed.sh": script, "sops.yaml": args.sops_config},
            binary_data={"gitops.tar": base64.b64encode(archive).decode()},
            opts=in_cluster,
        )
        webhook_url = pulumi.Output.secret(token.result.apply(handover.webhook_url))
        webhook = k8s.core.v1.Secret(
            f"{name}-seed-webhook",
            metadata={"namespace": ns},
            type="Opaque",
            string_data={"url": webhook_url, "secret": webhook_token},
            opts=in_cluster,
        )

        restore_env = []
        if args.backup is not None:
            restore_env = args.backup.env(args.backup.secret(f"{name}-seed-s3", ns, in_cluster).metadata.name)
        self.tools_image = TOOLS_IMAGE.format(version=args.app_version)

        deploy_public = deploy_key.public_key_openssh.apply(lambda k: " ".join(k.split()[:2]))
        seed = k8s.batch.v1.Job(
            f"{name}-seed",
            # Auto-named (new content, new Job); found by its label: `kubectl -n gitea logs -l
            # app.kubernetes.io/name=gitea-seed --tail=-1`.
            metadata={"namespace": ns, "labels": SEED_LABELS,
                      "annotations": {"cluster-bootstrap/content-sha256": digest}},
            spec={
                "backoffLimit": 4,
                "activeDeadlineSeconds": 1800,
                "template": {
                    "metadata": {"labels": SEED_LABELS},
                    "spec": {
                        "restartPolicy": "Never",
                        "securityContext": JOB_POD_SECURITY,
                        "containers": [{
                            "name": "seed",
                            "image": self.tools_image,
                            "command": ["/bin/sh", "/seed/gitea-seed.sh"],
                            "env": [
                                {"name": "GITEA_URL", "value": http_url()},
                                {"name": "ORG", "value": args.org},
                                {"name": "REPO", "value": args.repo},
                                {"name": "BRANCH", "value": BRANCH},
                                {"name": "DEPLOY_KEY", "value": deploy_public},
                                {"name": "DEPLOY_KEY_TITLE", "value": deploy_public.apply(
                                    lambda k: "flux-" + hashlib.sha256(k.encode()).hexdigest()[:12])},
                                {"name": "CONTENT", "value": "/seed"},
                                {"name": "HOME", "value": "/tmp"},
                                {"name": "TMPDIR", "value": "/tmp"},
                                from_secret("GITEA_USER", ADMIN_SECRET, "username"),
                                from_secret("GITEA_PASSWORD", ADMIN_SECRET, "password"),
                                from_secret("WEBHOOK_URL", webhook.metadata.name, "url"),
                                from_secret("WEBHOOK_SECRET", webhook.metadata.name, "secret"),
                                *restore_env,
                            ],
                            "volumeMounts": [{"name": "seed", "mountPath": "/seed", "readOnly": True},
                                             {"name": "tmp", "mountPath": "/tmp"}],
                            "securityContext": JOB_CONTAINER_SECURITY,
                            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                                          "limits": {"memory": "256Mi"}},
                        }],
                        "volumes": [{"name": "seed", "configMap": {"name": content.metadata.name}},
                                    {"name": "tmp", "emptyDir": {}}],
                    },
                },
            },
            # why: the Job talks to Gitea's API and git endpoints, up once the release is ready (and
            # restored, with gitea.restoreFrom: the seed then finds the repository's history);
            # the admin Secret it reads is the release's too
            opts=cluster.opts(self, depends_on=[release, admin, *restored]),
        )
        self.source = GitSource(
            url=handover.clone_url(args.org, args.repo),
            branch=BRANCH,
            known_hosts=host_key.public_key_openssh.apply(handover.known_hosts),
            deploy_key_private=pulumi.Output.secret(deploy_key.private_key_openssh),
            deploy_key_public=deploy_key.public_key_openssh,
            webhook_token=webhook_token,
            seeded=seed,
        )
        self.namespace, self.admin_secret, self.http_url = ns, ADMIN_SECRET, http_url()
        self.register_outputs({"gitRepositoryUrl": self.source.url})
