"""Stage 0 — BackupBucket: the S3 bucket a rebuilt cluster restores from, and the one identity
that may use it.

The bucket outlives clusters (protected in prod, or with backup.keepBucket): versioned, so a
backup never destroys the one before it; encrypted at rest; closed to the public and to plain
HTTP; older versions expire after `retain_days`. Its IAM user may list it and read and write its
objects, nothing else; its key only ever lands in Kubernetes Secrets and in the restore step's
secret stdin. `BackupAccess` is what the in-cluster jobs and the restore step are given.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.kube import from_secret

ETCD_PREFIX = "etcd/"  # where the controllers' etcd backups go
GITEA_PREFIX = "gitea/"  # where their Gitea dumps go
TYPE = "cluster-bootstrap:backup:BackupBucket"
CREDENTIALS_KEYS = ("access-key-id", "secret-access-key")


def bucket_policy(bucket_arn: str) -> dict:
    """Refuse every request that does not come over TLS."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    }


def access_policy(bucket_arn: str) -> dict:
    """The backup identity's rights: list this bucket (so a missing object is a 404, not a 403),
    read and write its objects. No delete: replaced objects stay as older versions."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ListBackups", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn},
            {"Sid": "ReadWriteBackups", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
             "Resource": f"{bucket_arn}/*"},
        ],
    }


def bucket_prefix(domain: str) -> str:
    """A bucket name prefix from the domain (S3 appends a unique suffix; names are at most 63)."""
    return re.sub(r"[^a-z0-9-]+", "-", domain.lower())[:29].strip("-") + "-backup-"


@dataclass(frozen=True)
class BackupAccess:
    """How a job reaches the bucket: its URL and region, and the backup identity's key."""

    url: pulumi.Output[str]  # https://<bucket>.s3.<region>.amazonaws.com
    region: str
    access_key_id: pulumi.Output[str]
    secret_access_key: pulumi.Output[str]  # secret

    def secret(self, resource_name: str, namespace: pulumi.Input[str], opts: pulumi.ResourceOptions) -> k8s.core.v1.Secret:
        """The key as a Kubernetes Secret in `namespace`, for a job's environment (see `env`)."""
        return k8s.core.v1.Secret(
            resource_name,
            metadata={"namespace": namespace, "labels": {"app.kubernetes.io/part-of": "cluster-bootstrap"}},
            type="Opaque",
            string_data=dict(zip(CREDENTIALS_KEYS, (self.access_key_id, pulumi.Output.secret(self.secret_access_key)))),
            opts=opts,
        )

    def env(self, secret_name: pulumi.Input[str]) -> list[dict]:
        """A container's environment for components/jobs/s3.sh, the key read from `secret_name`."""
        return [
            {"name": "S3_URL", "value": self.url},
            {"name": "S3_REGION", "value": self.region},
            from_secret("AWS_ACCESS_KEY_ID", secret_name, CREDENTIALS_KEYS[0]),
            from_secret("AWS_SECRET_ACCESS_KEY", secret_name, CREDENTIALS_KEYS[1]),
        ]


@dataclass(frozen=True)
class BackupBucketArgs:
    domain: str
    region: str
    retain_days: int  # how long replaced backups (older versions) are kept
    protect: bool = False  # the bucket and its settings survive `pulumi destroy --exclude-protected`


class BackupBucket(pulumi.ComponentResource):
    """A versioned, encrypted, private S3 bucket and an IAM user scoped to it."""

    bucket: pulumi.Output[str]
    access: BackupAccess

    def __init__(self, name: str, args: BackupBucketArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = {"cluster-bootstrap:domain": args.domain, "cluster-bootstrap:stack": pulumi.get_stack()}
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket_prefix=bucket_prefix(args.domain),
            # A throwaway stack's destroy removes the bucket with every version in it.
            force_destroy=not args.protect,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )

        def setting() -> pulumi.ResourceOptions:
            # Kept with a protected bucket (deleting a setting would suspend versioning or open the
            # bucket until the next `pulumi up`); gone with it otherwise, without a call of its own.
            return pulumi.ResourceOptions(parent=self, protect=args.protect, deleted_with=bucket)

        closed = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access", bucket=bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=setting())
        aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=bucket.id,
            versioning_configuration={"status": "Enabled"}, opts=setting())
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}], opts=setting())
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=bucket.id,
            rules=[{
                "id": "expire-replaced-backups",
                "status": "Enabled",
                "filter": {},  # the whole bucket
                "noncurrent_version_expiration": {"noncurrent_days": args.retain_days},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
            }, {
                # Each etcd backup is an object of its own (etcd/<node>/<time>.tar.gz.age), never
                # replaced: it expires after retain_days (a delete marker; the rule above then
                # removes the version), so the controllers' timers do not pile up backups for ever.
                "id": "expire-etcd-backups",
                "status": "Enabled",
                "filter": {"prefix": ETCD_PREFIX},
                "expiration": {"days": args.retain_days},
            }, {
                # The same for the Gitea dumps (gitea/<time>.tar.gz.age), one per timer run.
                "id": "expire-gitea-backups",
                "status": "Enabled",
                "filter": {"prefix": GITEA_PREFIX},
                "expiration": {"days": args.retain_days},
            }],
            opts=setting())
        aws.s3.BucketPolicy(
            f"{name}-tls-only", bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps(bucket_policy(arn))),
            # why: S3 aborts one of two concurrent changes to a bucket's public access block and policy
            # (OperationAborted); and the policy is only safe to add once the bucket is closed
            opts=pulumi.ResourceOptions.merge(setting(), pulumi.ResourceOptions(depends_on=[closed])))

        user = aws.iam.User(f"{name}-identity", path="/cluster-bootstrap/", tags=tags, force_destroy=True,
                            opts=child)
        aws.iam.UserPolicy(f"{name}-identity", user=user.name,
                           policy=bucket.arn.apply(lambda arn: json.dumps(access_policy(arn))), opts=child)
        # (the SDK registers `secret` as a secret output)
        key = aws.iam.AccessKey(f"{name}-identity", user=user.name, opts=child)

        self.bucket = bucket.bucket
        self.access = BackupAccess(
            url=pulumi.Output.concat("https://", bucket.bucket_regional_domain_name),
            region=args.region,
            access_key_id=key.id,
            secret_access_key=pulumi.Output.secret(key.secret),
        )
        self.register_outputs({"bucket": self.bucket})
