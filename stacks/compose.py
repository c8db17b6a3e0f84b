"""The composition: every layer's Args derived from the validated config, layers built in stage
order, read top-down like k0sctl's phase list. The only place that knows the config model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi

from components import handover
from components.backup import Backup, BackupArgs, GiteaDump
from components.bucket import BackupBucket, BackupBucketArgs
from components.certmanager import CertificateRestore, CertManager, CertManagerArgs
from components.cilium import Cilium, CiliumArgs
from components.dns import DnsZone, DnsZoneArgs
from components.flux import Flux, FluxArgs
from components.gitea import CONTAINER as GITEA_CONTAINER
from components.gitea import NAMESPACE as GITEA_NAMESPACE
from components.gitea import SELECTOR as GITEA_SELECTOR
from components.gitea import Gitea, GiteaArgs, GiteaRestore
from components.k0s import K0sCluster, K0sClusterArgs, Member, Restore
from components.node import Jump, Node, NodeArgs, SshAccess, host_of
from components.pki import AcmeAccount, AcmeAccountArgs, InternalCa, InternalCaArgs
from components.sops import SECRET_NAME as SOPS_SECRET
from components.sops import SopsAgeSecret, SopsAgeSecretArgs
from components.storage import LocalPathStorage, LocalPathStorageArgs
from components.upgrade import K0sVersionCheck, K0sVersionCheckArgs
from stacks import facts, renewal
from stacks.config import GITOPS_DIR, NodeConfig, StackConfig

DEFAULT_AWS_REGION = "us-east-1"  # Route53 is global; the region only steers cert-manager's STS calls


@dataclass
class Cluster:
    """The built layers of one stack."""

    config: StackConfig
    dns: DnsZone
    ca: InternalCa
    nodes: list[Node]
    k0s: K0sCluster
    cilium: Cilium
    storage: Optional[LocalPathStorage]  # None: the user's own StorageClass
    cert_manager: CertManager
    sops: SopsAgeSecret
    gitea: Gitea
    flux: Flux
    bucket: Optional[BackupBucket] = None  # None: backups off
    backup: Optional[Backup] = None

    def outputs(self) -> dict[str, pulumi.Input]:
        extra = {"backupBucket": self.bucket.bucket} if self.bucket else {}
        return {**extra,
            "zoneId": self.dns.zone_id,
            "nameServers": self.dns.name_servers,
            "internalCaCert": self.ca.cert_pem,
            "apiEndpoint": self.k0s.api_endpoint,
            "kubeconfig": pulumi.Output.secret(self.k0s.kubeconfig),
            # not secret: a renewal key and a date, what the next run decides renewal from
            renewal.OUTPUT: pulumi.Output.all(self.k0s.kubeconfig_renewal, pulumi.Output.unsecret(
                self.k0s.kubeconfig.apply(renewal.not_after))).apply(
                lambda kv: {"key": kv[0], "notAfter": kv[1]}),
            "sopsAgeRecipient": self.sops.recipient,
            "gitRepositoryUrl": self.gitea.source.url,
        }


def ssh_access(cfg: StackConfig, node: NodeConfig) -> SshAccess:
    ssh = cfg.ssh
    return SshAccess(
        address=node.address,
        port=ssh.port,
        user=ssh.user,
        private_key=pulumi.Output.secret(ssh.private_key.get_secret_value()) if ssh.private_key else None,
        dial_error_limit=ssh.dial_error_limit,
        per_dial_timeout=ssh.per_dial_timeout,
        bastion=Jump(ssh.bastion.host, ssh.bastion.port, ssh.bastion.user or ssh.user, ssh.bastion.host_key)
        if ssh.bastion else None,
        host_key=node.host_key,
    )


def build(cfg: StackConfig) -> Cluster:
    """Create every layer of the stack from its validated configuration."""
    protect, versions = cfg.protect, cfg.versions

    # Stage 0 — foundation: the zone later layers publish names in, the internal CA, the ACME account.
    dns = DnsZone(
        "dns",
        DnsZoneArgs(domain=cfg.domain, create_zone=cfg.dns.create_zone, zone_id=cfg.dns.zone_id,
                    protect=protect or cfg.dns.keep_zone, api_targets=tuple(cfg.api_targets) if cfg.dns.publish_records else ()),
    )
    ca = InternalCa("ca", InternalCaArgs(common_name=f"{cfg.domain} internal CA", protect=protect))
    acme = AcmeAccount("acme", AcmeAccountArgs(protect=protect))
    aws_region = pulumi.Config("aws").get("region") or DEFAULT_AWS_REGION
    # ... and the bucket a rebuilt cluster restores its repository and certificates from.
    bucket = None
    if cfg.backup.enabled:
        bucket = BackupBucket("backup", BackupBucketArgs(
            domain=cfg.domain, region=aws_region, retain_days=cfg.backup.retain_days,
            protect=protect or cfg.backup.keep_bucket))

    # What the backups are encrypted to, as the restore steps are given it (a restoreFrom without
    # sops.ageKey is refused by validation).
    age_identity = pulumi.Output.secret(cfg.sops.age_key.get_secret_value().strip()) if cfg.sops.age_key else None

    # Stage 1 — hosts: first the k0s each host runs, checked against the pin (read-only); then
    # each host prepared, trusting the CA, with k0s staged; in parallel.
    version_check = K0sVersionCheck(
        "k0s-version",
        K0sVersionCheckArgs(version=versions.k0s,
                            hosts={n.name: host_of(ssh_access(cfg, n), cfg.hosts_gone) for n in cfg.nodes}),
    )
    nodes = [
        Node(
            f"node-{n.name}",
            NodeArgs(
                hostname=n.name,
                ssh=ssh_access(cfg, n),
                runs_pods=n.is_worker,
                ca_cert_pem=ca.cert_pem,
                registry_host=f"registry.{cfg.domain}",
                k0s_version=versions.k0s,
                download_url=cfg.k0s.download_url,
                sha256=dict(cfg.k0s.sha256),
                binary_path=cfg.k0s.binary_path,
                airgap_bundle=cfg.k0s.airgap_bundle,
                gone=cfg.hosts_gone,
                # the first controller runs the certificate restore step (and k0s.restoreFrom's),
                # and every controller's etcd backup timer: both sign S3 requests
                signs_s3=cfg.backup.enabled and n.is_controller,
                # why: a skipped k0s minor or a downgrade is refused before any host changes
                after=[version_check],
            ),
        )
        for n in cfg.nodes
    ]

    # Stage 2 — control plane: controllers one at a time, then every worker.
    # (Each node's join waits for its own Node layer: see components/k0s.py.)
    k0s = K0sCluster(
        "k0s",
        K0sClusterArgs(
            version=versions.k0s,
            members=[Member(name=n.name, role=n.role, host=node.host, ready=node, labels=dict(n.labels),
                            private_address=n.private_address, address=n.address)
                     for n, node in zip(cfg.nodes, nodes)],
            api_endpoint=facts.api_endpoint(cfg),
            api_sans=facts.api_sans(cfg),
            pod_cidr=cfg.k0s.pod_cidr,
            service_cidr=cfg.k0s.service_cidr,
            cluster_identifier=f"cluster-bootstrap/{pulumi.get_stack()}",
            external_address=cfg.k0s.api_address,
            node_local_load_balancing=facts.node_local_load_balancing(cfg),
            airgap=bool(cfg.k0s.airgap_bundle),
            api_proxy=cfg.k0s.api_proxy,
            reboot_after_reset=cfg.k0s.reboot_after_reset,
            # A throwaway cluster may already be gone on destroy; never forget prod objects.
            delete_unreachable=not protect,
            worker_disruption_percent=cfg.k0s.worker_disruption_percent,
            # Pulumi's client certificate (a year) is renewed only within renewal.MARGIN of its
            # expiry, as this stack's last outputs record it: any other run changes nothing.
            kubeconfig_renewal=renewal.previous_record().apply(lambda p: renewal.key(p, renewal.now())),
            hosts_gone=cfg.hosts_gone,
            restore=Restore(source=cfg.k0s.restore_from, access=bucket.access, age_identity=age_identity)
            if cfg.k0s.restore_from and bucket and age_identity else None,
        ),
    )

    # Stage 3 — network: Cilium, serving before anything else starts.
    api_host, api_port = facts.in_cluster_api(cfg)
    ingress_ip = facts.ingress_ip(cfg)  # Cilium serves on it, the platform stage publishes *.<domain> at it
    cilium = Cilium(
        "cilium",
        CiliumArgs(
            version=versions.cilium,
            cluster=k0s.cluster,
            admin_host=k0s.admin_host,
            api_host=api_host,
            api_port=api_port,
            pod_cidr=cfg.k0s.pod_cidr,
            pool=cfg.cilium.load_balancer_pool,
            upgrade_compatibility=cfg.cilium.upgrade_compatibility,
            ingress_ip=ingress_ip,
            default_tls=facts.WILDCARD_TLS,
            nodes=[n.name for n in cfg.workers],
            # why: the agents and the operator schedule on a complete cluster
            after=[k0s],
        ),
        # why: stage order: the network comes up on a complete cluster (children repeat it, as
        # Pulumi children do not inherit a component's depends_on)
        opts=pulumi.ResourceOptions(depends_on=[k0s]),
    )

    # Stage 3 — storage: the default StorageClass, unless the stack names its own (then nothing
    # is installed and Gitea's volume uses that class).
    storage = None
    if cfg.storage.storage_class is None:
        storage = LocalPathStorage(
            "storage",
            LocalPathStorageArgs(
                chart_version=versions.local_path_provisioner,
                busybox_version=versions.busybox,
                host_path=cfg.storage.local_path,
                cluster=k0s.cluster,
                # why: the provisioner's pod needs the pod network (Cilium serving)
                after=[cilium],
            ),
        )
    storage_class = storage.storage_class if storage else cfg.storage.storage_class

    # Stage 4 — platform TLS: DNS-01 credentials, cert-manager, issuers, the wildcard certificate.
    cert_manager = CertManager(
        "cert-manager",
        CertManagerArgs(
            version=versions.cert_manager,
            cluster=k0s.cluster,
            domain=cfg.domain,
            zone_id=dns.zone_id,
            acme_email=cfg.acme.email,
            acme_server=cfg.acme.server,
            iam_role=cfg.acme.iam_role,
            aws_region=aws_region,
            ca_cert_pem=ca.cert_pem,
            ca_key_pem=ca.private_key_pem,
            account_key_pem=acme.private_key_pem,
            ingress_ip=ingress_ip,
            wildcard_tls=facts.WILDCARD_TLS,
            # why: cert-manager's pods need the pod network
            after=[cilium],
            admin_host=k0s.admin_host,
            publish_ingress=cfg.dns.publish_records,
            restore=CertificateRestore(admin_host=k0s.admin_host, access=bucket.access) if bucket else None,
        ),
        # why: stage order: in-cluster TLS comes up on a working pod network, with the zone in place
        opts=pulumi.ResourceOptions(depends_on=[cilium, dns]),
    )

    # Stage 5 — GitOps: the age identity, a seeded in-cluster Gitea, and Flux syncing from it.
    sops = SopsAgeSecret(
        "sops",
        SopsAgeSecretArgs(
            namespace=handover.FLUX_NAMESPACE,
            cluster=k0s.cluster,
            # why: its namespace lives in the cluster, up once the control plane is
            after=[k0s],
            age_key=pulumi.Output.secret(cfg.sops.age_key.get_secret_value()) if cfg.sops.age_key else None,
            protect=protect,
        ),
        # why: its namespace and Secret live in the cluster (children repeat it)
        opts=pulumi.ResourceOptions(depends_on=[k0s]),
    )
    storage_layer = [storage] if storage else []
    gitea = Gitea(
        "gitea",
        GiteaArgs(
            chart_version=versions.gitea,
            app_version=versions.gitea_app,
            domain=cfg.domain,
            org=cfg.gitea.org,
            repo=cfg.gitea.repo,
            storage_class=storage_class,
            sops_config=sops.sops_config,
            seed_dir=GITOPS_DIR,
            cluster=k0s.cluster,
            # why: Gitea's pods need the pod network
            after=[cilium],
            # why: Helm waits for Gitea's volume to be bound through the storage layer's class
            storage_ready=storage_layer,
            backup=bucket.access if bucket else None,
            restore=GiteaRestore(source=cfg.gitea.restore_from, admin_host=k0s.admin_host, age_identity=age_identity)
            if cfg.gitea.restore_from and bucket and age_identity else None,
        ),
        # why: stage order: Gitea's pods need the pod network, its volume the storage layer
        # (children repeat it)
        opts=pulumi.ResourceOptions(depends_on=[cilium, *storage_layer]),
    )
    flux = Flux(
        "flux",
        FluxArgs(
            operator_version=versions.flux_operator,
            flux_version=versions.flux,
            cluster=k0s.cluster,
            namespace=sops.namespace.metadata.name,
            namespace_ready=sops.namespace,
            decryption_secret=SOPS_SECRET,
            decryption_ready=sops.secret,
            source=gitea.source,
            path=cfg.flux.path,
            substitutions={"CLUSTER_DOMAIN": cfg.domain, "ACME_ISSUER": cert_manager.default_issuer},
            # why: Flux's controllers need the pod network
            after=[cilium],
            admin_host=k0s.admin_host,
        ),
        # why: Flux syncs from the seeded Gitea and decrypts with the age identity; its
        # controllers need the pod network (children repeat the precise edges)
        opts=pulumi.ResourceOptions(depends_on=[gitea, sops, cilium]),
    )
    backup = None
    if bucket is not None:
        backup = Backup(
            "gitops-backup",
            BackupArgs(
                schedule=cfg.backup.schedule,
                tools_image=gitea.tools_image,
                namespace=gitea.namespace,
                gitea_url=gitea.http_url,
                admin_secret=gitea.admin_secret,
                org=cfg.gitea.org,
                repo=cfg.gitea.repo,
                secrets=cert_manager.issued_secrets,
                access=bucket.access,
                cluster=k0s.cluster,
                # why: it backs up the repository the seed Job pushed (and Certificates' Secrets)
                after=[gitea.source.seeded, cert_manager],
                controllers=[(n.name, node.host) for n, node in zip(cfg.nodes, nodes) if n.is_controller],
                etcd_schedule=cfg.backup.etcd_schedule,
                gitea=GiteaDump(namespace=GITEA_NAMESPACE, selector=GITEA_SELECTOR, container=GITEA_CONTAINER),
                age_recipient=sops.recipient,
                controllers_after=[k0s],
            ),
            # why: stage order: backups start once the repository is seeded (children repeat it)
            opts=pulumi.ResourceOptions(depends_on=[gitea]),
        )
    return Cluster(config=cfg, dns=dns, ca=ca, nodes=nodes, k0s=k0s, cilium=cilium, storage=storage,
                   cert_manager=cert_manager, sops=sops, gitea=gitea, flux=flux, bucket=bucket, backup=backup)
