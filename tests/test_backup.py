"""Backups that survive a rebuild: what the program declares for them, the certificate restore
step over SSH on a stand-in controller against moto's S3 with IAM enforced (SigV4 signatures
checked, the program's own policy applied), and the S3 fixtures the twin's round trip with a real
Gitea and API server uses (tests/twin/test_backup_restore.py)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from components import backup, gitea, shell
from tests.conftest import run_stack, run_with
from tests.hostrun import rendered
from tests.manifests import validate
from tests.pins import VERSIONS
from tooling.fakes import key_and_cert

WILDCARD = ("kube-system", "wildcard-tls")


def tls_secret() -> dict:
    """The wildcard certificate's Secret as the API server keeps it once cert-manager issued it."""
    key, cert = key_and_cert("wildcard")
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "data": {"tls.crt": base64.b64encode(cert.encode()).decode(), "tls.key": base64.b64encode(key.encode()).decode()},
        "metadata": {
            "name": WILDCARD[1], "namespace": WILDCARD[0],
            "annotations": {"cert-manager.io/alt-names": "*.dev.k8s.example.org,dev.k8s.example.org",
                            "cert-manager.io/certificate-name": "wildcard",
                            "cert-manager.io/common-name": "*.dev.k8s.example.org",
                            "cert-manager.io/issuer-group": "cert-manager.io",
                            "cert-manager.io/issuer-kind": "ClusterIssuer",
                            "cert-manager.io/issuer-name": "letsencrypt-staging"},
            "labels": {"controller.cert-manager.io/fao": "true"},
            "creationTimestamp": "2026-11-01T10:00:00Z", "resourceVersion": "48213",
            "uid": "0f7c9a52-3d1e-4b8a-9f00-5c2f1e6d7a10",
            "ownerReferences": [{"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "name": "wildcard",
                                 "uid": "a1b2c3d4-0000-4000-8000-000000000001", "controller": True,
                                 "blockOwnerDeletion": True}],
            "managedFields": [{"apiVersion": "v1", "fieldsType": "FieldsV1", "manager": "cert-manager-certificates-issuing",
                               "operation": "Apply", "time": "2026-11-01T10:00:00Z",
                               "fieldsV1": {"f:data": {".": {}, "f:tls.crt": {}, "f:tls.key": {}},
                                            "f:metadata": {"f:annotations": {"f:cert-manager.io/certificate-name": {}}}}}],
        },
    }


def of(rec, type_: str, name: str):
    (found,) = [r for r in rec.of_type(type_) if r.name == name]
    return found


class Bucket:
    """moto's S3 with the bucket and the backup identity as the program declares them."""

    def __init__(self, aws, rec):
        self.aws = aws
        self.name = rec.outputs["backupBucket"]
        policy = of(rec, "aws:iam/userPolicy:UserPolicy", "backup-identity")
        s3, iam = aws("s3"), aws("iam")
        s3.create_bucket(Bucket=self.name)
        s3.put_bucket_versioning(Bucket=self.name, VersioningConfiguration={"Status": "Enabled"})
        s3.create_bucket(Bucket="someone-elses-bucket")
        iam.create_user(UserName="backup")
        iam.put_user_policy(UserName="backup", PolicyName="backup", PolicyDocument=policy.inputs["policy"])
        key = iam.create_access_key(UserName="backup")["AccessKey"]
        self.key_id, self.secret = key["AccessKeyId"], key["SecretAccessKey"]
        self.env = {"S3_URL": f"{aws.url}/{self.name}", "S3_REGION": "us-east-1",
                    "AWS_ACCESS_KEY_ID": self.key_id, "AWS_SECRET_ACCESS_KEY": self.secret}

    def credentials(self) -> dict[str, str]:
        """The identity moto made for the program's policy (the fakes' key would not sign)."""
        return {"AWS_ACCESS_KEY_ID": self.key_id, "AWS_SECRET_ACCESS_KEY": self.secret}

    def versions(self, key: str) -> list[str]:
        listed = self.aws("s3").list_object_versions(Bucket=self.name, Prefix=key)
        return [v["VersionId"] for v in listed.get("Versions", []) if v["Key"] == key]

    def read(self, key: str) -> bytes:
        return self.aws("s3").get_object(Bucket=self.name, Key=key)["Body"].read()


def enforced():
    """moto checks every request's SigV4 signature and the signer's IAM policy from here on."""
    from moto.core import authorization

    return authorization.enable_iam_authentication()


@pytest.fixture
def bucket(aws):
    return Bucket(aws, run_stack("dev", preview=False))


def test_a_certificate_without_a_backup_is_left_to_cert_manager(bucket, fleet):
    controller = fleet.first_controller()
    script, env = rendered(run_stack("dev", preview=False), "cert-manager-restore")
    env.update(S3_URL=bucket.env["S3_URL"])
    with enforced():
        done = fleet.run(script, controller, {k: bucket.env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")},
                         **env)
    assert done.returncode == 0, done.stderr
    assert "no backup of secret kube-system/wildcard-tls: cert-manager issues it" in done.stderr
    assert not (fleet.cluster / "objects/secret/kube-system/wildcard-tls").exists()


def test_the_backup_identity_reaches_its_bucket_and_nothing_else(aws, bucket):
    """The rendered policy, enforced by moto, with boto3 (an S3 client apart from our scripts)."""
    import boto3
    import botocore.exceptions

    client = boto3.client("s3", endpoint_url=aws.url, region_name="us-east-1",
                          aws_access_key_id=bucket.key_id, aws_secret_access_key=bucket.secret)
    iam = boto3.client("iam", endpoint_url=aws.url, region_name="us-east-1",
                       aws_access_key_id=bucket.key_id, aws_secret_access_key=bucket.secret)
    with enforced():
        client.put_object(Bucket=bucket.name, Key="gitops/x.bundle", Body=b"bundle")
        assert client.get_object(Bucket=bucket.name, Key="gitops/x.bundle")["Body"].read() == b"bundle"
        client.list_objects_v2(Bucket=bucket.name)
        denied = [
            lambda: client.delete_object(Bucket=bucket.name, Key="gitops/x.bundle"),
            lambda: client.put_object(Bucket="someone-elses-bucket", Key="x", Body=b"x"),
            lambda: client.list_objects_v2(Bucket="someone-elses-bucket"),
            lambda: client.get_bucket_policy(Bucket=bucket.name),
            lambda: client.put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration={"Status": "Suspended"}),
            lambda: iam.list_users(),
        ]
        for call in denied:
            with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
                call()


# --- what the program declares ------------------------------------------------------------------

def test_the_bucket_is_private_versioned_encrypted_and_forgets_old_versions(up):
    bucket = up.named("backup-bucket")
    assert bucket.dependencies == [] and bucket.inputs["bucketPrefix"] == {
        "dev": "dev-k8s-example-org-backup-", "prod": "k8s-example-org-backup-"}[up.stack]
    assert bucket.inputs["forceDestroy"] is (up.stack == "dev")
    assert up.named("backup-versioning").inputs["versioningConfiguration"] == {"status": "Enabled"}
    (rule,) = up.named("backup-encryption").inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    lifecycle, *dated = up.named("backup-lifecycle").inputs["rules"]
    assert lifecycle["status"] == "Enabled" and lifecycle["filter"] == {}
    assert lifecycle["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    # each etcd backup and Gitea dump is an object of its own, never replaced: it must expire while
    # current (the keys the timer writes: tests/test_etcd_backup.py, tests/twin/test_gitea_backup.py)
    assert sorted(r["filter"]["prefix"] for r in dated) == ["etcd/", "gitea/"]
    assert all(r["status"] == "Enabled" and r["expiration"] == {"days": 30} for r in dated)
    block = up.named("backup-public-access").inputs
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                          "restrictPublicBuckets"))
    (statement,) = json.loads(up.named("backup-tls-only").inputs["policy"])["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == [bucket_arn := f"arn:aws:s3:::{up.outputs['backupBucket']}", f"{bucket_arn}/*"]
    for setting in ("backup-versioning", "backup-encryption", "backup-lifecycle", "backup-public-access",
                    "backup-tls-only"):
        assert up.named(setting).deleted_with == bucket.urn, setting


def test_a_throwaway_stack_can_keep_its_bucket_and_zone():
    rec = run_with(preview=False, backup={"keepBucket": True, "retainDays": 7}, dns={"keepZone": True})
    protected = {r.name for r in rec.resources.values() if r.protect}
    assert protected == {"dns-zone", "backup-bucket", "backup-versioning", "backup-encryption", "backup-lifecycle",
                         "backup-public-access", "backup-tls-only"}
    assert rec.named("backup-lifecycle").inputs["rules"][0]["noncurrentVersionExpiration"] == {"noncurrentDays": 7}


def test_the_certificate_waits_for_the_restore_step(rec):
    restore = rec.named("cert-manager-restore")
    certificate = rec.named("cert-manager-wildcard")
    assert restore.urn in certificate.dependencies
    assert restore.is_secret("stdin")  # the backup identity's key
    assert rec.named("cilium-agents-ready").urn in restore.dependencies  # the network stage serves
    if not rec.preview:
        script, env = rendered(rec, "cert-manager-restore")
        assert script == "restore-certificates.sh" and env["SECRETS"] == "kube-system/wildcard-tls"
        assert env["S3_URL"] == f"https://{rec.outputs['backupBucket']}.s3.us-east-1.amazonaws.com"
        first = "192.0.2.10" if rec.stack == "dev" else "198.51.100.11"
        assert restore.inputs["connection"]["host"] == first


def test_every_controller_and_no_worker_must_have_a_curl_that_signs_s3(rec):
    """The first controller restores certificates; every controller's etcd backup timer uploads."""
    nodes = [r for r in rec.of_type("command:remote:Command") if r.name.endswith("-prepare")]
    controllers = {"dev": {"node-dev-1-prepare"},
                   "prod": {"node-cp-1-prepare", "node-cp-2-prepare", "node-cp-3-prepare"}}[rec.stack]
    assert controllers <= {n.name for n in nodes}
    for node in nodes:
        assert ("CURL_SIGV4=true" in node.inputs["create"]) is (node.name in controllers), node.name


def test_the_backup_job_reads_only_what_it_backs_up(up):
    cron = up.named("gitops-backup-cronjob")
    validate(cron.inputs)
    spec = cron.inputs["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"]) == ("23 */6 * * *", "Etc/UTC", "Forbid")
    role = of(up, "kubernetes:rbac.authorization.k8s.io/v1:Role", "gitops-backup-read-kube-system")
    validate(role.inputs)
    assert role.inputs["metadata"]["namespace"] == "kube-system"
    assert role.inputs["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                                     "resourceNames": ["wildcard-tls"]}]
    binding = of(up, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "gitops-backup-read-kube-system")
    validate(binding.inputs)
    assert binding.inputs["subjects"] == [{"kind": "ServiceAccount", "name": backup.NAME, "namespace": "gitea"}]
    assert up.depends_transitively(cron.urn, up.named("gitea-seed").urn)
    container = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == gitea.TOOLS_IMAGE.format(version=VERSIONS["giteaApp"])
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "GITEA_PASSWORD"):
        (entry,) = [e for e in container["env"] if e["name"] == name]
        assert "secretKeyRef" in entry["valueFrom"], name


def test_the_backup_program_passes_shellcheck(tmp_path):
    program = tmp_path / "gitops-backup.sh"
    program.write_text(shell.assemble(backup.SCRIPT))
    done = subprocess.run([str(Path(sys.executable).parent / "shellcheck"), "-s", "sh", str(program)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_backups_off_leaves_no_trace():
    rec = run_with(preview=False, backup={"enabled": False})
    names = {r.name for r in rec.resources.values()}
    assert not {n for n in names if n.startswith(("backup", "gitops-backup"))} and "cert-manager-restore" not in names
    job = rec.named("gitea-seed").inputs["spec"]["template"]["spec"]["containers"][0]
    assert not [e for e in job["env"] if e["name"].startswith(("S3_", "AWS_"))]
    assert "backupBucket" not in rec.outputs


def test_the_bucket_and_the_backup_job_build_from_their_args_alone():
    from components.backup import Backup, BackupArgs
    from components.bucket import BackupBucket, BackupBucketArgs
    from tests import standalone

    def program():
        store = BackupBucket("vault", BackupBucketArgs(domain="Lab.Example.NET", region="eu-west-1", retain_days=3))
        Backup("nightly", BackupArgs(
            schedule="0 3 * * *", tools_image="registry.example.net/tools:1", namespace="git",
            gitea_url="http://git.git.svc:3000", admin_secret="git-admin", org="infra", repo="fleet",
            secrets=[("edge", "tls-a"), ("edge", "tls-b"), ("apps", "tls-c")], access=store.access,
            cluster=standalone.cluster(), after=[standalone.marker()]))

    rec = standalone.build(program)
    assert rec.named("vault-bucket").inputs["bucketPrefix"] == "lab-example-net-backup-"
    roles = {r.inputs["metadata"]["namespace"]: r.inputs["rules"][0]["resourceNames"]
             for r in rec.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")}
    assert roles == {"edge": ["tls-a", "tls-b"], "apps": ["tls-c"]}
    container = rec.named("nightly-cronjob").inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SECRETS"] == "edge/tls-a edge/tls-b apps/tls-c" and env["S3_REGION"] == "eu-west-1"
    assert env["S3_URL"].startswith("https://lab-example-net-backup-")
