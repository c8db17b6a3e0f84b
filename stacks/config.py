"""The stack configuration contract (namespace `cluster-bootstrap`) as one typed, immutable model.

`load(stack)` reads every key of the namespace once, validates all of it, and raises a single
`ConfigError` (a `pulumi.RunError`) listing every problem by field path before any resource
exists. Secret values are `SecretStr`: they never print, and layers turn them into secret Outputs.
"""

from __future__ import annotations

import difflib
import json
import typing
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel

from stacks import validators as v
from stacks.problems import ConfigError, Problem, problems_from

NAMESPACE = "cluster-bootstrap"
# Namespaces a stack may also set: the providers this program uses, and Pulumi's own.
OTHER_NAMESPACES = ("aws", "kubernetes", "command", "random", "tls", "pulumi")
# What the seed Job pushes into the in-cluster repository; Flux reconciles flux.path of it.
GITOPS_DIR = Path(__file__).resolve().parent.parent / "gitops"

Label = Annotated[str, AfterValidator(v.dns_label)]
Address = Annotated[str, AfterValidator(v.address)]
IP = Annotated[str, AfterValidator(v.ip)]
Cidr = Annotated[str, AfterValidator(v.cidr)]
IpRange = Annotated[str, AfterValidator(v.ip_range)]
Port = Annotated[int, Field(ge=1, le=65535)]
Role = Literal["controller", "worker", "controller+worker"]


def _alias(name: str) -> str:
    """snake_case field → camelCase config key (names without '_', like k0s, stay as they are)."""
    return to_camel(name) if "_" in name else name


class _Model(BaseModel):
    # strict: a string where a number or boolean belongs is an error, as Pulumi's typed config has it
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, alias_generator=_alias,
                              populate_by_name=True)


class DnsConfig(_Model):
    create_zone: bool = Field(True, description="Create the Route53 zone for `domain`; false uses an existing one.")
    zone_id: Optional[Annotated[str, AfterValidator(v.zone_id)]] = Field(
        None, description="Existing zone id (with createZone: false); unset looks the zone up by name."
    )
    keep_zone: bool = Field(
        False, description="Protect the created zone even in a throwaway stack: `pulumi destroy --exclude-protected` "
        "then `pulumi up` rebuilds around the same zone, so name-server delegation is done once.")
    publish_records: bool = Field(
        True, description="Publish api.<domain> and *.<domain> A records in the zone; false keeps the zone for "
        "DNS-01 only (no addresses in public DNS: resolve those names in your own DNS).")


HostKey = Annotated[str, AfterValidator(v.host_key)]


class Bastion(_Model):
    host: Address = Field(description="Jump host address.")
    port: Port = Field(22, description="Jump host SSH port.")
    user: Optional[str] = Field(None, description="Jump host user; defaults to ssh.user.")
    host_key: Optional[HostKey] = Field(
        None, description="The jump host's SSH host key, ed25519 or ECDSA (`ssh-keyscan` output or a known_hosts "
        "line); every connection checks it.")


class SshConfig(_Model):
    user: str = Field("root", min_length=1, description="Login user on every host (root or passwordless sudo).")
    port: Port = Field(22, description="SSH port on every host.")
    private_key: Optional[Annotated[SecretStr, AfterValidator(v.private_key)]] = Field(
        None, description="Private key (set with --secret); unset uses the operator's ssh-agent."
    )
    bastion: Optional[Bastion] = Field(None, description="Optional jump host {host, port, user}.")
    per_dial_timeout: int = Field(15, ge=1, le=600, description="Seconds for one SSH dial attempt.")
    dial_error_limit: int = Field(10, ge=1, le=1000, description="Failed dials before a remote step gives up.")


class NodeConfig(_Model):
    name: Label = Field(description="Kubernetes node name and host name (DNS label).")
    address: Address = Field(description="Address the operator reaches over SSH.")
    role: Role = Field(description="controller, worker or controller+worker.")
    private_address: Optional[IP] = Field(None, description="Address cluster traffic uses; defaults to address.")
    labels: dict[Annotated[str, AfterValidator(v.label_key)], Annotated[str, AfterValidator(v.label_value)]] = Field(
        default_factory=dict, description="Extra Kubernetes node labels (kept in step with every `pulumi up`)."
    )
    host_key: Optional[HostKey] = Field(
        None, description="The host's SSH host key, ed25519 or ECDSA (`ssh-keyscan` output or a known_hosts "
        "line); every connection checks it. Unset: the host is not verified (the plan warns)."
    )

    @property
    def is_controller(self) -> bool:
        return self.role in ("controller", "controller+worker")

    @property
    def is_worker(self) -> bool:
        return self.role in ("worker", "controller+worker")


class K0sConfig(_Model):
    pod_cidr: Cidr = Field("10.244.0.0/16", alias="podCIDR", description="Pod network (Cilium IPAM).")
    service_cidr: Cidr = Field("10.96.0.0/12", alias="serviceCIDR", description="Service network.")
    api_address: Optional[Address] = Field(
        None, description="Address behind api.<domain> (a load balancer or VIP); defaults to the controllers' addresses."
    )
    airgap_bundle: Optional[Annotated[str, AfterValidator(v.local_file)]] = Field(
        None, description="Local path of a k0s airgap image bundle, uploaded to every worker (needs binaryPath)."
    )
    binary_path: Optional[Annotated[str, AfterValidator(v.local_file)]] = Field(
        None, description="Local path of the k0s binary to upload instead of downloading it on the hosts."
    )
    sha256: dict[Literal["amd64", "arm64", "arm", "riscv64"], Annotated[str, AfterValidator(v.sha256)]] = Field(
        default_factory=dict, description="Pinned k0s binary digests by architecture; unset uses the release's sha256sums.txt."
    )
    reboot_after_reset: bool = Field(False, description="Reboot hosts after `k0s reset` on pulumi destroy.")
    worker_disruption_percent: int = Field(
        10, ge=1, le=100, description="Share of workers restarted at once by an upgrade (k0sctl's "
        "workerDisruptionPercent): cordoned and drained first, uncordoned once Ready.")
    download_url: Annotated[str, AfterValidator(v.url_template)] = Field(
        "https://github.com/k0sproject/k0s/releases/download/{version}/k0s-{version}-{arch}",
        description="k0s binary URL template ({version}, {arch}); point it at a mirror.",
    )
    restore_from: Optional[Annotated[str, AfterValidator(v.restore_source)]] = Field(
        None, description="Restore etcd and the cluster PKI from an encrypted etcd backup in the backup bucket "
        "(`latest`, or an object key etcd/<node>/<time>.tar.gz.age) on the first controller before k0s is "
        "installed there; one-shot: a host that already runs a cluster refuses it. Needs sops.ageKey (docs/rebuild.md)."
    )
    api_proxy: Optional[Annotated[str, AfterValidator(v.proxy_url)]] = Field(
        None, description="Proxy (socks5://, http://) Pulumi and kubectl reach the API through, e.g. an "
        "`ssh -D` tunnel via the bastion; written into the kubeconfig as proxy-url."
    )


class CiliumConfig(_Model):
    load_balancer_pool: IpRange = Field(
        description="LB IPAM pool for Services of type LoadBalancer (ingress IP): CIDR or 'first-last'."
    )
    upgrade_compatibility: Optional[Annotated[str, AfterValidator(v.minor_version)]] = Field(
        None, description="The Cilium minor the cluster was first installed with (e.g. '1.18'), set on "
        "clusters upgraded from it: the chart keeps that release's defaults (Cilium's upgrade guide)."
    )


class AcmeConfig(_Model):
    email: Annotated[str, AfterValidator(v.email)] = Field(description="Let's Encrypt account e-mail.")
    server: Literal["staging", "production"] = Field(
        "staging", description="Let's Encrypt directory the default issuer uses."
    )
    iam_role: bool = Field(
        False, description="DNS-01 rights on an IAM role cert-manager assumes, not on its IAM user."
    )


class StorageConfig(_Model):
    storage_class: Optional[Annotated[str, AfterValidator(v.dns_subdomain)]] = Field(
        None, description="A StorageClass the cluster already has; unset installs local-path-provisioner "
        "as the default class."
    )
    local_path: Annotated[str, AfterValidator(v.absolute_path)] = Field(
        "/var/lib/local-path-provisioner",
        description="Host directory local-path-provisioner keeps volumes in (on every node that runs pods).",
    )


class GiteaConfig(_Model):
    org: Annotated[str, AfterValidator(v.gitea_name)] = Field("platform", description="Gitea organisation.")
    repo: Annotated[str, AfterValidator(v.gitea_name)] = Field("gitops", description="GitOps repository name.")
    restore_from: Optional[Annotated[str, AfterValidator(v.gitea_restore_source)]] = Field(
        None, description="Restore the whole Gitea (users, keys, repositories, issues, settings) from an encrypted "
        "Gitea backup in the backup bucket (`latest`, or an object key gitea/<time>.tar.gz.age) into the newly "
        "installed Gitea, before the seed Job and Flux; one-shot: a Gitea that holds repositories refuses it. "
        "Needs sops.ageKey (docs/rebuild.md)."
    )


class FluxConfig(_Model):
    path: Optional[Annotated[str, AfterValidator(v.repo_path)]] = Field(
        None, description="Repository path Flux reconciles; defaults to clusters/<stack>."
    )


class SopsConfig(_Model):
    age_key: Optional[Annotated[SecretStr, AfterValidator(v.age_identity)]] = Field(
        None, description="age identity AGE-SECRET-KEY-1… (set with --secret); unset generates one."
    )


class BackupConfig(_Model):
    enabled: bool = Field(True, description="Back up the GitOps repository and the issued certificates to an S3 "
                          "bucket of the stack's (stage 0), and restore them into a rebuilt cluster.")
    schedule: Annotated[str, AfterValidator(v.cron_schedule)] = Field(
        "23 */6 * * *", description="When the in-cluster backup CronJob runs (cron, UTC).")
    retain_days: int = Field(30, ge=1, le=3650, description="Days S3 keeps a replaced backup's older versions, "
                             "and each etcd and Gitea backup (etcd/…, gitea/…) before it expires.")
    etcd_schedule: Annotated[str, AfterValidator(v.on_calendar)] = Field(
        "*-*-* 03:00:00", description="When each controller's systemd timer backs up etcd, the cluster PKI and all "
        "of Gitea, encrypted to the stack's age recipient (systemd OnCalendar, UTC; one controller uploads per run).")
    keep_bucket: bool = Field(
        False, description="Protect the bucket even in a throwaway stack (prod protects it anyway): it survives "
        "`pulumi destroy --exclude-protected`, and the rebuilt cluster restores from it.")


class Versions(_Model):
    k0s: Annotated[str, AfterValidator(v.k0s_version)] = Field(description="k0s release.")
    cilium: Annotated[str, AfterValidator(v.semver)] = Field(description="Cilium Helm chart.")
    cert_manager: Annotated[str, AfterValidator(v.semver)] = Field(description="cert-manager Helm chart.")
    gitea: Annotated[str, AfterValidator(v.semver)] = Field(description="Gitea Helm chart.")
    gitea_app: Annotated[str, AfterValidator(v.semver)] = Field(
        description="Gitea release the server runs (the chart's image.tag) and the seed Job's tools image.")
    flux: Annotated[str, AfterValidator(v.semver)] = Field(description="Flux release (the FluxInstance distribution).")
    flux_operator: Annotated[str, AfterValidator(v.semver)] = Field(description="Flux Operator Helm chart.")
    local_path_provisioner: Annotated[str, AfterValidator(v.semver)] = Field(
        description="local-path-provisioner Helm chart (the storage layer).")
    busybox: Annotated[str, AfterValidator(v.semver)] = Field(
        description="busybox image local-path-provisioner's helper pods run.")


class StackConfig(_Model):
    domain: Annotated[str, AfterValidator(v.domain)] = Field(description="Cluster DNS domain (Route53 zone).")
    dns: DnsConfig = Field(default_factory=DnsConfig, description="Route53 zone handling.")
    ssh: SshConfig = Field(default_factory=SshConfig, description="How Pulumi reaches the hosts.")
    nodes: list[NodeConfig] = Field(description="Hosts and their roles.")
    k0s: K0sConfig = Field(default_factory=K0sConfig, description="k0s cluster settings.")
    cilium: CiliumConfig = Field(description="Cilium networking.")
    storage: StorageConfig = Field(default_factory=StorageConfig, description="Persistent volumes.")
    acme: AcmeConfig = Field(description="Let's Encrypt.")
    gitea: GiteaConfig = Field(default_factory=GiteaConfig, description="In-cluster git server.")
    flux: FluxConfig = Field(default_factory=FluxConfig, description="Flux sync.")
    sops: SopsConfig = Field(default_factory=SopsConfig, description="SOPS age identity.")
    backup: BackupConfig = Field(default_factory=BackupConfig, description="Backups that survive a rebuild.")
    protect: bool = Field(description="Protect the zone and long-lived keys from deletion.")
    hosts_gone: bool = Field(
        False, description="The hosts no longer exist: `pulumi up` once, then `pulumi destroy` forgets host steps "
        "and in-cluster objects instead of reaching them (docs/operations.md: When the hosts are gone).")
    versions: Versions = Field(description="Pinned versions: the one place to bump them.")

    @property
    def controllers(self) -> list[NodeConfig]:
        return [n for n in self.nodes if n.is_controller]

    @property
    def workers(self) -> list[NodeConfig]:
        return [n for n in self.nodes if n.is_worker]

    def warnings(self) -> list[str]:
        """What is allowed but unsafe: the plan and `pulumi up` print these."""
        found = [f"nodes[{i}] ({n.name}): no hostKey; its SSH host is not verified, so join tokens and the "
                 "kubeconfig travel over an unauthenticated connection" for i, n in enumerate(self.nodes)
                 if not n.host_key]
        if self.ssh.bastion and not self.ssh.bastion.host_key:
            found.append("ssh.bastion: no hostKey; the jump host is not verified")
        found += self._pool_segment_warnings()
        return found

    def _pool_segment_warnings(self) -> list[str]:
        """Cilium answers ARP/NDP for the pool's addresses (L2 announcements) only on the nodes' own
        segment: a pool in no node's network is unreachable. Without the hosts' prefix lengths the
        segment is taken as the /24 (IPv4) or /64 (IPv6) around each node address."""
        addresses = [a for n in self.nodes for a in (n.address, n.private_address) if a and v.is_ip(a)]
        if not addresses:
            return []  # nodes addressed by host name only: nothing to compare
        pool = self.cilium.load_balancer_pool
        if any(v.same_segment(a, pool) for a in addresses):
            return []
        return [f"cilium.loadBalancerPool {pool} shares no subnet with any node address ({', '.join(addresses)}; "
                "taken as /24 or /64): Cilium announces the pool's addresses (ARP/NDP) only on the nodes' own "
                "segment, so the ingress address would not answer; pick free addresses on the nodes' network "
                "(ignore this if that network is wider and holds the pool)"]

    @property
    def api_targets(self) -> list[str]:
        """What api.<domain> points at: k0s.apiAddress, else every controller's address."""
        return [self.k0s.api_address] if self.k0s.api_address else [n.address for n in self.controllers]


SECRET_FIELDS = {("ssh", "privateKey"), ("sops", "ageKey")}


def _cross_checks(parts: dict[str, Any]) -> list[Problem]:
    """Rules that span fields; each runs only when the fields it reads parsed."""
    problems: list[Problem] = []
    nodes: Optional[list[tuple[int, NodeConfig]]] = parts.get("nodes")
    k0s: Optional[K0sConfig] = parts.get("k0s")
    if k0s is not None:
        if v.overlaps([k0s.pod_cidr], [k0s.service_cidr]):
            problems.append(Problem("k0s.serviceCIDR", f"{k0s.service_cidr} overlaps k0s.podCIDR {k0s.pod_cidr}"))
    cilium: Optional[CiliumConfig] = parts.get("cilium")
    if cilium is not None:
        pool = cilium.load_balancer_pool
        if k0s is not None:
            for field, net in (("podCIDR", k0s.pod_cidr), ("serviceCIDR", k0s.service_cidr)):
                if v.overlaps([pool], [net]):
                    problems.append(Problem("cilium.loadBalancerPool", f"{pool} overlaps k0s.{field} {net}"))
        for i, node in nodes or []:
            for field, addr in (("address", node.address), ("privateAddress", node.private_address)):
                if addr and v.in_range(addr, pool):
                    problems.append(
                        Problem("cilium.loadBalancerPool", f"{pool} contains nodes[{i}].{field} {addr}; "
                                "the pool must hold only free addresses")
                    )
    if k0s is not None and k0s.airgap_bundle and not k0s.binary_path:
        problems.append(Problem("k0s.binaryPath", "required with k0s.airgapBundle: airgapped hosts cannot download k0s"))
    if nodes and not (k0s and k0s.api_address):
        named = [f"nodes[{i}]" for i, n in nodes if n.is_controller and not v.is_ip(n.address)]
        if named and sum(n.is_controller for _, n in nodes) > 1:
            problems.append(Problem("k0s.apiAddress", f"required: controllers {', '.join(named)} are "
                                    "addressed by host name, and api.<domain> can only alias one name"))
    acme: Optional[AcmeConfig] = parts.get("acme")
    domain: Optional[str] = parts.get("domain")
    if acme is not None and domain is not None:
        problems += _email_checks(acme.email, domain)
    dns: Optional[DnsConfig] = parts.get("dns")
    if dns is not None and dns.create_zone and dns.zone_id:
        problems.append(Problem("dns.zoneId", "only allowed with dns.createZone: false"))
    if dns is not None and dns.keep_zone and not dns.create_zone:
        problems.append(Problem("dns.keepZone", "only allowed with dns.createZone: true; an existing zone is never "
                                "deleted by this stack"))
    ssh: Optional[SshConfig] = parts.get("ssh")
    if ssh is not None and ssh.bastion and k0s is not None and not (k0s.api_proxy or k0s.api_address):
        problems.append(Problem(
            "k0s.apiProxy", f"required with ssh.bastion: the API on the controllers is presumably reachable only "
            f"through {ssh.bastion.host}; open a tunnel (`ssh -N -D 1080 {ssh.bastion.user or ssh.user}@"
            f"{ssh.bastion.host}`) and set k0s.apiProxy: socks5://127.0.0.1:1080, or set k0s.apiAddress to an "
            "API address this machine reaches directly"))
    backup: Optional[BackupConfig] = parts.get("backup")
    sops: Optional[SopsConfig] = parts.get("sops")
    gitea: Optional[GiteaConfig] = parts.get("gitea")
    for field, what, wanted in (("k0s.restoreFrom", "etcd", k0s is not None and k0s.restore_from),
                                ("gitea.restoreFrom", "Gitea", gitea is not None and gitea.restore_from)):
        if not wanted:
            continue
        if backup is not None and not backup.enabled:
            problems.append(Problem(field, "needs backup.enabled: true (the backups are in its bucket)"))
        if sops is not None and sops.age_key is None:
            problems.append(Problem(field, f"needs sops.ageKey: the {what} backups are encrypted to the "
                                    "stack's age identity, which the restore must be given (docs/rebuild.md)"))
    storage: Optional[StorageConfig] = parts.get("storage")
    if storage is not None and storage.storage_class and "local_path" in storage.model_fields_set:
        problems.append(Problem("storage.localPath", "only used when the storage layer installs "
                                "local-path-provisioner; remove it or unset storage.storageClass"))
    return problems


def _email_checks(email: str, domain: str) -> list[Problem]:
    """Let's Encrypt refuses an account e-mail at a reserved name (example.org, .test, .invalid…).

    The committed and scaffolded stacks are documentation examples through and through: their
    `domain` is under example.org too, so they cannot be deployed before they are edited, and
    `make plan` of them must keep working. So the e-mail is refused when the domain is the user's
    own (the stack was edited, the e-mail forgotten); `make plan` names both placeholders otherwise."""
    reserved = v.reserved_domain(email.rsplit("@", 1)[-1])
    if reserved is None or v.reserved_domain(domain) is not None:
        return []
    return [Problem("acme.email", f"{email!r} is at {reserved}, a name reserved for documentation and "
                    "testing: Let's Encrypt refuses to register an account with it, and no mail reaches it; "
                    "set an address you read: `pulumi config set --path acme.email you@<your domain>`")]


def placeholders(raw: dict[str, Any]) -> list[str]:
    """What in a stack still is a documentation placeholder (`make plan` says so; `pulumi up` of
    such a stack cannot succeed: Route53 zones under example.org cannot be delegated, and Let's
    Encrypt refuses the e-mail)."""
    found = []
    domain = raw.get("domain")
    if isinstance(domain, str) and v.reserved_domain(domain):
        found.append(f"domain {domain!r} is under {v.reserved_domain(domain)}: put in a domain you can delegate")
    email = (raw.get("acme") or {}).get("email") if isinstance(raw.get("acme"), dict) else None
    if isinstance(email, str) and "@" in email and v.reserved_domain(email.rsplit("@", 1)[-1]):
        found.append(f"acme.email {email!r} is at {v.reserved_domain(email.rsplit('@', 1)[-1])}: "
                     "put in an address you read")
    return found


def _role_checks(items: list[Any]) -> list[Problem]:
    """Controller count rules; skipped while any role is itself invalid (reported per node)."""
    roles = [item.get("role") if isinstance(item, dict) else None for item in items]
    if not roles or any(role not in typing.get_args(Role) for role in roles):
        return []
    controllers = sum(role != "worker" for role in roles)
    if not controllers:
        return [Problem("nodes", "no controller; at least one node needs role controller or controller+worker")]
    if controllers > 1 and controllers % 2 == 0:
        return [Problem("nodes", f"{controllers} controllers; etcd needs an odd number (1, 3, 5…) for quorum")]
    return []


def validate(raw: dict[str, Any], stack: str, secret_keys: frozenset[str] = frozenset(),
             foreign_keys: Iterable[str] = ()) -> StackConfig:
    """Validate raw config values (key → decoded value) into a StackConfig, or raise ConfigError.
    `foreign_keys` are the full keys of the stack outside this project's namespace."""
    fields = StackConfig.model_fields
    aliases = {(f.alias or name): name for name, f in fields.items()}
    problems: list[Problem] = _namespace_checks(foreign_keys)
    for key in sorted(set(raw) - set(aliases)):
        problems.append(Problem(key, f"unknown key; allowed keys: {', '.join(aliases)}"))
    parts: dict[str, Any] = {}
    for alias, name in aliases.items():
        if alias not in raw:
            if fields[name].is_required():
                problems.append(Problem(alias, "required"))
            else:
                parts[name] = fields[name].get_default(call_default_factory=True)
            continue
        if name == "nodes":
            parts[name] = _validate_nodes(raw[alias], problems)
            continue
        try:
            parts[name] = _adapter(fields[name]).validate_python(raw[alias], strict=True)
        except ValidationError as exc:
            problems += problems_from(exc, alias, fields[name].annotation)
    if parts.get("flux") is not None and parts["flux"].path is None:
        parts["flux"] = FluxConfig(path=f"clusters/{stack}")
    problems += _secret_checks(raw, secret_keys)
    problems += _cross_checks(parts)
    problems += _seed_checks(parts, stack)
    if problems:
        raise ConfigError(stack, problems)
    values = dict(parts)
    values["nodes"] = [n for _, n in parts["nodes"]]
    return StackConfig(**values)


def _namespace_checks(foreign_keys: Iterable[str]) -> list[Problem]:
    """Keys of a namespace no provider reads would be ignored by Pulumi: a typo, made an error."""
    problems = []
    for key in sorted(foreign_keys):
        namespace = key.split(":", 1)[0]
        if namespace not in OTHER_NAMESPACES:
            guess = difflib.get_close_matches(namespace, [NAMESPACE, *OTHER_NAMESPACES], n=1)
            problems.append(Problem(key, f"unknown namespace {namespace!r}"
                                    + (f" (did you mean {guess[0]!r}?)" if guess else "")
                                    + f"; allowed: {NAMESPACE} (this project), " + ", ".join(OTHER_NAMESPACES)))
    return problems


def _seed_checks(parts: dict[str, Any], stack: str) -> list[Problem]:
    """Flux reconciles flux.path of the repository the seed Job pushes from gitops/: it must be there."""
    flux: Optional[FluxConfig] = parts.get("flux")
    if flux is None or flux.path is None or (GITOPS_DIR / flux.path / "kustomization.yaml").is_file():
        return []
    known = sorted(p.parent.relative_to(GITOPS_DIR).as_posix() for p in GITOPS_DIR.glob("clusters/*/kustomization.yaml"))
    return [Problem("flux.path", f"{flux.path!r} is not a directory of gitops/ with a kustomization.yaml, so the "
                    f"first sync would fail; `make stack STACK={stack}` scaffolds clusters/{stack}, or set one "
                    f"of: {', '.join(known)}")]


def _adapter(field) -> TypeAdapter:
    """A validator for one top-level field, with the validators pydantic keeps in its metadata."""
    annotation = field.annotation
    if field.metadata:
        annotation = Annotated.__class_getitem__((annotation, *field.metadata))
    return TypeAdapter(annotation)


def _validate_nodes(value: Any, problems: list[Problem]) -> Optional[list[tuple[int, NodeConfig]]]:
    """Validate node by node so one bad entry does not hide the others' problems."""
    if not isinstance(value, list):
        problems.append(Problem("nodes", f"must be a list of nodes, got {type(value).__name__}"))
        return None
    if not value:
        problems.append(Problem("nodes", "empty; at least one node is required"))
    problems += _duplicates(value) + _role_checks(value)
    parsed = []
    for i, item in enumerate(value):
        try:
            parsed.append((i, NodeConfig.model_validate(item)))
        except ValidationError as exc:
            problems += problems_from(exc, f"nodes[{i}]", NodeConfig)
    return parsed


def _duplicates(items: list[Any]) -> list[Problem]:
    """Names and addresses must be unique across nodes, whether or not the rest of a node is valid."""
    problems: list[Problem] = []
    seen: dict[tuple[str, str], str] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        for key, space in (("name", "name"), ("address", "addr"), ("privateAddress", "addr")):
            value = item.get(key)
            if not isinstance(value, str) or not value:
                continue
            path = f"nodes[{i}].{key}"
            first = seen.setdefault((space, value.lower()), path)
            if first != path and not first.startswith(f"nodes[{i}]."):
                problems.append(Problem(path, f"{value!r} is already used by {first}"))
    return problems


def _secret_checks(raw: dict[str, Any], secret_keys: frozenset[str]) -> list[Problem]:
    """Secret fields must come from `pulumi config set --secret`, never plain text in a stack file."""
    problems = []
    for section, field in sorted(SECRET_FIELDS):
        value = raw.get(section)
        if isinstance(value, dict) and value.get(field) and section not in secret_keys:
            problems.append(
                Problem(f"{section}.{field}", f"is plain text; set it with "
                        f"`pulumi config set --secret --path {section}.{field} …`")
            )
    return problems


def raw_from_pulumi() -> tuple[dict[str, Any], frozenset[str], list[str]]:
    """Every key of our namespace as the engine passed it, JSON-decoded; the secret ones; and the
    full keys of every other namespace."""
    from pulumi.runtime import config as runtime_config

    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = NAMESPACE + ":"
    raw = {k[len(prefix):]: decode_value(val) for k, val in merged.items() if k.startswith(prefix)}
    secret = frozenset(k[len(prefix):] for k in raw_secret_keys() if k.startswith(prefix))
    return raw, secret, [k for k in merged if not k.startswith(prefix)]


def raw_secret_keys() -> set[str]:
    from pulumi.runtime import config as runtime_config

    return set(runtime_config.get_config_secret_keys_env()) | set(runtime_config._SECRET_KEYS.get())


def decode_value(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def load(stack: str) -> StackConfig:
    """Read and validate this stack's configuration (raises ConfigError listing every problem)."""
    raw, secret, foreign = raw_from_pulumi()
    return validate(raw, stack, secret, foreign)
