"""Stage 4 — CertManager: DNS-01 IAM, cert-manager, Let's Encrypt and internal-CA issuers, wildcard cert.

Pulumi owns the ACME account key (stage 0, `AcmeAccount`) and writes it into the issuers'
`privateKeySecretRef` with account-key generation off, so a rebuilt cluster signs in to the same
Let's Encrypt account instead of registering a new one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import dns, remote, upgrade
from components.bucket import BackupAccess
from components.kube import InCluster

TYPE = "cluster-bootstrap:platform:CertManager"
REPOSITORY = "https://charts.jetstack.io"
NAMESPACE = "cert-manager"  # the chart's cluster resource namespace: ClusterIssuer secrets live here
ACME_DIRECTORIES = {
    "staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
    "production": "https://acme-v02.api.letsencrypt.org/directory",
}
ACCOUNT_KEY_SECRET = "letsencrypt-account-key"
CREDENTIALS_SECRET = "route53-credentials"
CA_ISSUER = "internal-ca"
# Public resolvers for the DNS-01 self-check: a homelab's split-horizon DNS often answers for the
# domain itself and would never show the challenge TXT record published in Route53.
SELF_CHECK_RESOLVERS = "1.1.1.1:53,9.9.9.9:53"


def issuer_name(server: str) -> str:
    return f"letsencrypt-{server}"


def dns01_policy(zone_arn: str, domain: str) -> dict:
    """Least privilege for DNS-01: TXT challenge records of this zone's names, nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadChangeStatus", "Effect": "Allow", "Action": "route53:GetChange",
             "Resource": "arn:aws:route53:::change/*"},
            {"Sid": "ListZoneRecords", "Effect": "Allow", "Action": "route53:ListResourceRecordSets",
             "Resource": zone_arn},
            {"Sid": "WriteChallengeRecords", "Effect": "Allow", "Action": "route53:ChangeResourceRecordSets",
             "Resource": zone_arn,
             "Condition": {
                 "ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]},
                 "ForAllValues:StringLike": {"route53:ChangeResourceRecordSetsNormalizedRecordNames": [
                     f"_acme-challenge.{domain}", f"_acme-challenge.*.{domain}"]},
             }},
            # Listing zones cannot be scoped to one zone; cert-manager uses it to find the zone id
            # when a solver has none (ours always sets hostedZoneID).
            {"Sid": "FindZone", "Effect": "Allow", "Action": "route53:ListHostedZonesByName", "Resource": "*"},
        ],
    }


def assume_policy(role_arn: str) -> dict:
    return {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}]}


def trust_policy(user_arn: str) -> dict:
    return {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": user_arn}}]}


def helm_values() -> dict:
    """Chart values (checked against the chart's values reference for the pinned version)."""
    return {
        "crds": {"enabled": True, "keep": True},
        "extraArgs": ["--dns01-recursive-nameservers-only",
                      f"--dns01-recursive-nameservers={SELF_CHECK_RESOLVERS}"],
    }


def acme_issuer_spec(email: str, domain: str, server: str, zone_id, region: str, role_arn=None) -> dict:
    route53: dict = {
        "region": region,
        "hostedZoneID": zone_id,
        "accessKeyIDSecretRef": {"name": CREDENTIALS_SECRET, "key": "access-key-id"},
        "secretAccessKeySecretRef": {"name": CREDENTIALS_SECRET, "key": "secret-access-key"},
    }
    if role_arn is not None:
        route53["role"] = role_arn
    return {
        "acme": {
            "email": email,
            "server": ACME_DIRECTORIES[server],
            "privateKeySecretRef": {"name": ACCOUNT_KEY_SECRET},
            # The key is Pulumi's: never let cert-manager register a fresh account behind its back.
            "disableAccountKeyGeneration": True,
            "solvers": [{"selector": {"dnsZones": [domain]}, "dns01": {"route53": route53}}],
        }
    }


@dataclass(frozen=True)
class CertificateRestore:
    """Where issued certificates' Secrets are put back from, before their Certificates exist."""

    admin_host: remote.Host  # runs `k0s kubectl`
    access: BackupAccess


@dataclass(frozen=True)
class CertManagerArgs:
    version: str
    cluster: InCluster
    domain: str
    zone_id: pulumi.Input[str]  # the Route53 zone DNS-01 challenges are written to
    acme_email: str
    acme_server: str  # staging | production: the default issuer, the wildcard certificate's
    iam_role: bool  # DNS-01 rights on a role the IAM user assumes
    aws_region: str
    ca_cert_pem: pulumi.Input[str]
    ca_key_pem: pulumi.Input[str]  # secret
    account_key_pem: pulumi.Input[str]  # secret: the Let's Encrypt account key (stage 0)
    ingress_ip: str  # where *.<domain> points: the shared ingress
    wildcard_tls: tuple[str, str]  # (namespace, name) of the wildcard certificate's Secret
    after: Sequence[pulumi.Resource]  # the pod network
    admin_host: remote.Host  # a controller: `k0s kubectl` reads the running version there
    publish_ingress: bool = True  # *.<domain> → the ingress address in the zone (false: DNS-01 only)
    restore: Optional[CertificateRestore] = None  # a rebuilt cluster gets its certificates back


class CertManager(pulumi.ComponentResource):
    """cert-manager with `letsencrypt-staging`, `letsencrypt-production` and `internal-ca` issuers."""

    default_issuer: str
    issued_secrets: list[tuple[str, str]]  # (namespace, name) of the Secrets its Certificates fill

    def __init__(self, name: str, args: CertManagerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(TYPE, name, None, opts)
        cluster = args.cluster
        child = pulumi.ResourceOptions(parent=self)
        self.default_issuer = issuer_name(args.acme_server)

        # DNS-01 credentials: an IAM user whose key lands only in a Kubernetes Secret.
        zone_arn = pulumi.Output.concat("arn:aws:route53:::hostedzone/", args.zone_id)
        policy = zone_arn.apply(lambda arn: json.dumps(dns01_policy(arn, args.domain)))
        tags = {"cluster-bootstrap:domain": args.domain, "cluster-bootstrap:stack": pulumi.get_stack()}
        user = aws.iam.User(f"{name}-dns01", path="/cluster-bootstrap/", tags=tags, force_destroy=True, opts=child)
        role_arn = None
        if args.iam_role:
            role = aws.iam.Role(
                f"{name}-dns01",
                path="/cluster-bootstrap/",
                assume_role_policy=user.arn.apply(lambda arn: json.dumps(trust_policy(arn))),
                tags=tags,
                opts=child,
            )
            aws.iam.RolePolicy(f"{name}-dns01", role=role.id, policy=policy, opts=child)
            aws.iam.UserPolicy(f"{name}-dns01-assume", user=user.name,
                               policy=role.arn.apply(lambda arn: json.dumps(assume_policy(arn))), opts=child)
            role_arn = role.arn
        else:
            aws.iam.UserPolicy(f"{name}-dns01", user=user.name, policy=policy, opts=child)
        # (the SDK registers `secret` as a secret output; the Secret below keeps it one)
        access_key = aws.iam.AccessKey(f"{name}-dns01", user=user.name, opts=child)

        # In-cluster objects: through the cluster's provider, gone with the cluster on destroy.
        in_cluster = cluster.opts(self)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": NAMESPACE},
            # why: stage order: the platform comes after the network (the namespace gates this layer)
            opts=cluster.opts(self, depends_on=args.after),
        )
        ns = namespace.metadata.name
        credentials = k8s.core.v1.Secret(
            f"{name}-route53-credentials",
            metadata={"name": CREDENTIALS_SECRET, "namespace": ns},
            type="Opaque",
            string_data={"access-key-id": access_key.id, "secret-access-key": pulumi.Output.secret(access_key.secret)},
            opts=in_cluster,
        )
        account_key = k8s.core.v1.Secret(
            f"{name}-account-key",
            metadata={"name": ACCOUNT_KEY_SECRET, "namespace": ns},
            type="Opaque",
            string_data={"tls.key": args.account_key_pem},
            opts=in_cluster,
        )
        ca_secret = k8s.core.v1.Secret(
            f"{name}-internal-ca-key",
            metadata={"name": CA_ISSUER, "namespace": ns},
            type="kubernetes.io/tls",
            string_data={"tls.crt": args.ca_cert_pem, "tls.key": args.ca_key_pem},
            opts=in_cluster,
        )
        checked = upgrade.release_check(name, self, args.admin_host, "cert-manager",
                                        f"{NAMESPACE}/deployment/cert-manager", args.version, args.after)
        release = k8s.helm.v3.Release(
            f"{name}-release",
            name="cert-manager",
            chart="cert-manager",
            version=args.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=REPOSITORY),
            namespace=ns,
            values=helm_values(),
            atomic=True,
            timeout=600,
            # why: cert-manager's pods need the pod network (Cilium) to schedule and reach the API;
            # and the running cert-manager may move to this version (one minor at a time)
            opts=cluster.opts(self, depends_on=[*args.after, checked]),
        )

        def issuer(resource_name: str, issuer: str, spec, secrets: list[k8s.core.v1.Secret]):
            return k8s.apiextensions.CustomResource(
                resource_name,
                api_version="cert-manager.io/v1",
                kind="ClusterIssuer",
                metadata={"name": issuer},
                spec=spec,
                # why: the chart installs the ClusterIssuer CRD and its validating webhook; the
                # issuer reads its Secrets (account key or CA, DNS-01 credentials) once it exists
                opts=cluster.opts(self, depends_on=[release, *secrets]),
            )

        issuers = {
            server: issuer(
                f"{name}-{issuer_name(server)}", issuer_name(server),
                acme_issuer_spec(args.acme_email, args.domain, server, args.zone_id, args.aws_region, role_arn),
                [account_key, credentials],
            )
            for server in ACME_DIRECTORIES
        }
        issuer(f"{name}-{CA_ISSUER}", CA_ISSUER, {"ca": {"secretName": CA_ISSUER}}, [ca_secret])

        wildcard_namespace, wildcard_secret = args.wildcard_tls
        self.issued_secrets = [args.wildcard_tls]
        restored = []
        if args.restore is not None:
            access = args.restore.access
            restored.append(remote.run(
                f"{name}-restore",
                args.restore.admin_host,
                "restore-certificates.sh",
                env={"SECRETS": " ".join(f"{ns}/{secret}" for ns, secret in self.issued_secrets),
                     "S3_URL": access.url, "S3_REGION": access.region},
                secret_env={"AWS_ACCESS_KEY_ID": access.access_key_id,
                            "AWS_SECRET_ACCESS_KEY": access.secret_access_key},
                # why: the API serves once the network stage is up
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
            ))
        k8s.apiextensions.CustomResource(
            f"{name}-wildcard",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata={"name": "wildcard", "namespace": wildcard_namespace},
            spec={
                "secretName": wildcard_secret,
                "dnsNames": [f"*.{args.domain}", args.domain],
                "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": self.default_issuer},
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            },
            # why: issued by the stack's default ACME issuer (and the CRD comes with the chart); a
            # restored Secret must be there first, or cert-manager orders a new certificate
            opts=cluster.opts(self, depends_on=[issuers[args.acme_server], *restored]),
        )

        # Every name under the domain reaches the shared ingress (Cilium's fixed pool address),
        # unless the zone is for DNS-01 only.
        if args.publish_ingress:
            dns.publish(f"{name}-ingress", args.zone_id, args.domain, f"*.{args.domain}", [args.ingress_ip],
                        parent=self)
        self.register_outputs({"defaultIssuer": self.default_issuer})
