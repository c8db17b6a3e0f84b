"""Stage 5 — Backup: an in-cluster CronJob that copies what a rebuild would lose to the stack's
bucket: the GitOps repository (a git bundle of every ref) and the Secrets of the certificates
cert-manager issued. A rebuilt cluster gets them back: the seed Job pushes the bundle into the new
Gitea, the platform stage's restore step recreates the Secrets before their Certificates.

The job reads Gitea with its admin account and exactly the Secrets it backs up (RBAC `get` on
those names, nothing else). When it last succeeded: the CronJob's `status.lastSuccessfulTime`,
and the object `last-good-backup` in the bucket. And on every controller a systemd timer backs up
etcd and the cluster PKI (`k0s backup`), encrypted with age before it leaves the host, to
etcd/<node>/<time>.tar.gz.age, and then all of Gitea (`gitea dump` in its container, streamed
through age on the controller) to gitea/<time>.tar.gz.age; `k0s.restoreFrom` restores the first
(components/k0s.py), `gitea.restoreFrom` the second (components/gitea.py).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components import remote, shell
from components.bucket import BackupAccess
from components.kube import JOB_CONTAINER_SECURITY, JOB_POD_SECURITY, InCluster, from_secret

TYPE = "cluster-bootstrap:gitops:Backup"
NAME = "gitops-backup"
SCRIPT = Path(__file__).resolve().parent / "jobs" / "gitops-backup.sh"  # runs in the cluster
ETCD_SCRIPT = "etcd-backup.sh"  # what each controller's timer runs (components/scripts)
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "cluster-bootstrap"}


@dataclass(frozen=True)
class GiteaDump:
    """Where the controllers' timer finds Gitea to dump: its pods' namespace, labels and container."""

    namespace: str
    selector: str
    container: str


@dataclass(frozen=True)
class BackupArgs:
    schedule: str  # cron, UTC
    tools_image: str  # sh, curl and git: Gitea's own image
    namespace: pulumi.Input[str]  # Gitea's: the job reads the repository with the admin Secret there
    gitea_url: str
    admin_secret: str  # keys username, password
    org: str
    repo: str
    secrets: Sequence[tuple[str, str]]  # (namespace, name) of the issued certificates' Secrets
    access: BackupAccess
    cluster: InCluster
    after: Sequence[pulumi.Resource]  # the seeded repository (and what the Secrets' namespaces need)
    # etcd and the cluster PKI: a systemd timer on each controller (name, host), encrypting to the recipient
    controllers: Sequence[tuple[str, remote.Host]] = ()
    etcd_schedule: str = "*-*-* 03:00:00"  # OnCalendar, UTC
    age_recipient: pulumi.Input[str] = ""
    controllers_after: Sequence[pulumi.Resource] = ()  # k0s runs on them
    gitea: Optional[GiteaDump] = None  # all of Gitea, dumped by the same timer


class Backup(pulumi.ComponentResource):
    """The `gitops-backup` CronJob and the least it needs to run."""

    def __init__(self, name: str, args: BackupArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(TYPE, name, None, opts)
        cluster = args.cluster
        # why: the job backs up a repository the seed Job has pushed, through Gitea's API
        first = cluster.opts(self, depends_on=args.after)
        ns = args.namespace
        credentials = args.access.secret(f"{name}-s3", ns, first)
        script = k8s.core.v1.ConfigMap(
            f"{name}-script",
            metadata={"namespace": ns, "labels": LABELS},
            data={f"{NAME}.sh": shell.assemble(SCRIPT)},
            opts=first,
        )
        account = k8s.core.v1.ServiceAccount(
            f"{name}-account", metadata={"name": NAME, "namespace": ns, "labels": LABELS}, opts=first)
        for namespace in sorted({n for n, _ in args.secrets}):
            role = k8s.rbac.v1.Role(
                f"{name}-read-{namespace}",
                metadata={"name": NAME, "namespace": namespace, "labels": LABELS},
                rules=[{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                        "resourceNames": sorted(s for n, s in args.secrets if n == namespace)}],
                opts=first,
            )
            k8s.rbac.v1.RoleBinding(
                f"{name}-read-{namespace}",
                metadata={"name": NAME, "namespace": namespace, "labels": LABELS},
                role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role.metadata.name},
                subjects=[{"kind": "ServiceAccount", "name": account.metadata.name, "namespace": ns}],
                opts=first,
            )

        k8s.batch.v1.CronJob(
            f"{name}-cronjob",
            metadata={"name": NAME, "namespace": ns, "labels": LABELS},
            spec={
                "schedule": args.schedule,
                "timeZone": "Etc/UTC",
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 3600,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": {"spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": 1800,
                    "template": {
                        "metadata": {"labels": LABELS},
                        "spec": {
                            "restartPolicy": "Never",
                            "serviceAccountName": account.metadata.name,
                            "securityContext": JOB_POD_SECURITY,
                            "containers": [{
                                "name": "backup",
                                "image": args.tools_image,
                                "command": ["/bin/sh", f"/backup/{NAME}.sh"],
                                "env": [
                                    {"name": "GITEA_URL", "value": args.gitea_url},
                                    {"name": "ORG", "value": args.org},
                                    {"name": "REPO", "value": args.repo},
                                    {"name": "SECRETS", "value": " ".join(f"{n}/{s}" for n, s in args.secrets)},
                                    {"name": "HOME", "value": "/tmp"},
                                    {"name": "TMPDIR", "value": "/tmp"},
                                    from_secret("GITEA_USER", args.admin_secret, "username"),
                                    from_secret("GITEA_PASSWORD", args.admin_secret, "password"),
                                    *args.access.env(credentials.metadata.name),
                                ],
                                "volumeMounts": [{"name": "script", "mountPath": "/backup", "readOnly": True},
                                                 {"name": "tmp", "mountPath": "/tmp"}],
                                "securityContext": JOB_CONTAINER_SECURITY,
                                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                                              "limits": {"memory": "512Mi"}},
                            }],
                            "volumes": [{"name": "script", "configMap": {"name": script.metadata.name}},
                                        {"name": "tmp", "emptyDir": {}}],
                        },
                    },
                }},
            },
            opts=first,
        )
        etcd_program = base64.b64encode(remote.program(ETCD_SCRIPT).encode()).decode()
        for node, host in args.controllers:
            env: dict[str, pulumi.Input[str]] = {"NODE_NAME": node, "SCHEDULE": args.etcd_schedule,
                                                 "AGE_RECIPIENT": args.age_recipient, "S3_URL": args.access.url,
                                                 "S3_REGION": args.access.region, "PROGRAM_B64": etcd_program}
            if args.gitea is not None:
                env |= {"GITEA_NAMESPACE": args.gitea.namespace, "GITEA_SELECTOR": args.gitea.selector,
                        "GITEA_CONTAINER": args.gitea.container}
            remote.run(
                f"{name}-etcd-{node}", host, "etcd-backup-timer.sh", env=env,
                secret_env={"AWS_ACCESS_KEY_ID": args.access.access_key_id,
                            "AWS_SECRET_ACCESS_KEY": args.access.secret_access_key},
                delete=("etcd-backup-timer.sh", {"ACTION": "remove"}),
                # why: `k0s backup` needs k0s running on the controller
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.controllers_after)))
        self.register_outputs({})
