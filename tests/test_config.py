"""The configuration contract: every rule has a failing config, and all problems come at once."""

from __future__ import annotations

import base64

import copy
from pathlib import Path

import pulumi
import pytest
import yaml

from stacks.config import decode_value, validate
from stacks.problems import ConfigError
from tests.conftest import STACKS, fixture_config, raw_config, run_with
from tooling import stackfile
from tests.pins import VERSIONS

ROOT = Path(__file__).resolve().parent.parent
NODE = {"name": "n1", "address": "192.0.2.20", "role": "worker"}


def problems(raw: dict, secret: frozenset = frozenset()) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        validate(raw, "dev", secret)
    return {p.path: p.message for p in caught.value.problems}


def changed(stack: str = "dev", **changes) -> dict:
    raw = copy.deepcopy(raw_config(stack))
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


def nodes(*roles: str) -> list[dict]:
    return [{"name": f"n{i}", "address": f"192.0.2.{20 + i}", "role": role} for i, role in enumerate(roles)]


def user_stacks() -> list[str]:
    """The stacks whose files the user has in the project (whatever they are: dev, prod, staging…)."""
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))


@pytest.fixture
def gitops_of_the_fixtures(tmp_path, monkeypatch):
    """gitops/ as the fixture stacks need it (clusters/dev and clusters/prod) and nothing else, so a
    stack the user scaffolded (gitops/clusters/staging…) cannot change what these tests see."""
    from stacks import config as config_module

    for stack in STACKS:
        (tmp_path / "clusters" / stack).mkdir(parents=True)
        (tmp_path / "clusters" / stack / "kustomization.yaml").write_text("resources: []\n")
    monkeypatch.setattr(config_module, "GITOPS_DIR", tmp_path)
    return tmp_path


@pytest.mark.parametrize("stack", STACKS)
def test_fixture_stacks_are_valid(stack):
    cfg = validate(raw_config(stack), stack)
    assert cfg.flux.path == f"clusters/{stack}"


def test_dev_is_throwaway_and_prod_is_ha():
    dev, prod = (validate(raw_config(s), s) for s in STACKS)
    assert [n.role for n in dev.nodes] == ["controller+worker"]
    assert (dev.acme.server, dev.protect) == ("staging", False)
    assert (len(prod.controllers), len(prod.workers)) == (3, 2)
    assert (prod.acme.server, prod.protect) == ("production", True)


@pytest.mark.parametrize("stack", user_stacks())
def test_committed_stack_files_are_valid(stack):
    """The stack files in the project are the user's to edit, add and delete; all the tests ask of
    those that exist is validity."""
    config, secret = stackfile.read(stack)
    prefix = "cluster-bootstrap:"
    raw = {k[len(prefix):]: decode_value(v) for k, v in config.items() if k.startswith(prefix)}
    validate(raw, stack, frozenset(k[len(prefix):] for k in secret))


def blob(kind: str) -> str:
    """Base64 key data whose type field says `kind` (what the validator reads)."""
    return base64.b64encode(len(kind).to_bytes(4, "big") + kind.encode() + bytes(36)).decode()


RULES = [
    ("missing nodes", dict(nodes=None), "nodes", "required"),
    ("empty nodes", dict(nodes=[]), "nodes", "at least one node"),
    ("no controller", dict(nodes=nodes("worker", "worker")), "nodes", "no controller"),
    ("even controllers", dict(nodes=nodes("controller", "controller", "worker")), "nodes", "odd number"),
    ("duplicate name", dict(nodes=[NODE | {"role": "controller"}, NODE | {"address": "192.0.2.21"}]),
     "nodes[1].name", "already used by nodes[0]"),
    ("duplicate address", dict(nodes=[NODE | {"role": "controller"}, NODE | {"name": "n2"}]),
     "nodes[1].address", "already used by nodes[0].address"),
    ("invalid IP", dict(nodes=[NODE | {"role": "controller", "address": "192.0.2.300"}]),
     "nodes[0].address", "not a valid IPv4 address"),
    ("invalid hostname", dict(nodes=[NODE | {"role": "controller", "address": "bad_host!"}]),
     "nodes[0].address", "neither an IP address nor a host name"),
    ("invalid node name", dict(nodes=[NODE | {"role": "controller", "name": "Node_1"}]),
     "nodes[0].name", "not a DNS label"),
    ("unknown role", dict(nodes=[NODE | {"role": "master"}]), "nodes[0].role",
     "'master' is not allowed; allowed: 'controller', 'worker' or 'controller+worker'"),
    ("ssh port", dict(ssh={"port": 70000}), "ssh.port", "less than or equal to 65535"),
    ("ssh port zero", dict(ssh={"port": 0}), "ssh.port", "greater than or equal to 1"),
    ("domain", dict(domain="localhost"), "domain", "not a domain"),
    ("domain chars", dict(domain="bad_domain.example.org"), "domain", "not a valid host name"),
    ("acme server", dict(acme={"email": "ops@example.org", "server": "prod"}), "acme.server",
     "allowed: 'staging' or 'production'"),
    ("acme email", dict(acme={"email": "ops-at-example.org"}), "acme.email", "not an e-mail address"),
    ("k0s version", dict(versions={**VERSIONS, "k0s": "1.33.4"}),
     "versions.k0s", "the form 'v1.33.4+k0s.0'"),
    ("chart version", dict(versions={**VERSIONS, "cilium": "latest"}),
     "versions.cilium", "not a pinned version"),
    ("pod CIDR", dict(k0s={"podCIDR": "10.244.0.1/16"}), "k0s.podCIDR", "not a CIDR network"),
    ("pod/service overlap", dict(k0s={"podCIDR": "10.0.0.0/8"}), "k0s.serviceCIDR", "overlaps k0s.podCIDR"),
    ("LB pool syntax", dict(cilium={"loadBalancerPool": "192.0.2.250-192.0.2.240"}),
     "cilium.loadBalancerPool", "must not be after the last"),
    ("LB pool overlaps pods", dict(cilium={"loadBalancerPool": "10.244.1.0/24"}),
     "cilium.loadBalancerPool", "overlaps k0s.podCIDR"),
    ("LB pool holds a node", dict(cilium={"loadBalancerPool": "192.0.2.0/28"}),
     "cilium.loadBalancerPool", "contains nodes[0].address 192.0.2.10"),
    ("unknown top-level key", dict(domian="x.example.org"), "domian", "unknown key; allowed keys: domain,"),
    ("unknown nested key", dict(acme={"email": "ops@example.org", "sever": "staging"}), "acme.sever",
     "unknown key; allowed keys: email, server"),
    ("unknown node key", dict(nodes=[NODE | {"role": "controller", "roles": "x"}]), "nodes[0].roles",
     "unknown key; allowed keys: name, address, role, privateAddress, labels"),
    ("zone id with createZone", dict(dns={"createZone": True, "zoneId": "Z0123456789ABC"}), "dns.zoneId",
     "only allowed with dns.createZone: false"),
    ("zone id shape", dict(dns={"createZone": False, "zoneId": "zone-1"}), "dns.zoneId",
     "not a Route53 hosted zone id"),
    ("label key", dict(nodes=[NODE | {"role": "controller", "labels": {"-bad": "x"}}]), "nodes[0].labels.-bad",
     "not a Kubernetes label key"),
    ("gitea repo", dict(gitea={"repo": "my repo"}), "gitea.repo", "not a Gitea name"),
    ("flux path", dict(flux={"path": "../etc"}), "flux.path", "not a relative repository path"),
    ("download URL", dict(k0s={"downloadUrl": "https://mirror.example.org/{release}/k0s"}), "k0s.downloadUrl",
     "placeholders are {version} and {arch}"),
    ("api address by name", dict(nodes=[{"name": f"c{i}", "address": f"c{i}.example.org", "role": "controller"}
                                        for i in range(3)]), "k0s.apiAddress", "addressed by host name"),
    ("missing acme", dict(acme=None), "acme", "required"),
    ("bastion without API path", dict(ssh={"bastion": {"host": "198.51.100.5"}}), "k0s.apiProxy",
     "required with ssh.bastion"),
    ("proxy URL", dict(k0s={"apiProxy": "socks5://127.0.0.1"}), "k0s.apiProxy", "not a proxy URL"),
    ("proxy scheme", dict(k0s={"apiProxy": "ftp://127.0.0.1:21"}), "k0s.apiProxy", "not a proxy URL"),
    ("storage class name", dict(storage={"storageClass": "Fast_SSD"}), "storage.storageClass",
     "not a Kubernetes object name"),
    ("local path", dict(storage={"localPath": "data/volumes"}), "storage.localPath", "not an absolute host path"),
    ("local path with own class", dict(storage={"storageClass": "ceph-rbd", "localPath": "/srv"}),
     "storage.localPath", "only used when the storage layer installs local-path-provisioner"),
    ("protect type", dict(protect="maybe"), "protect", "must be true or false (got 'maybe')"),
    ("protect as YAML 1.1 yes", dict(protect="yes"), "protect", "must be true or false (got 'yes')"),
    ("port as a string", dict(ssh={"port": "22"}), "ssh.port", "must be a whole number, not str (got '22')"),
    ("labels as numbers", dict(nodes=[NODE | {"role": "controller", "labels": {"tier": 1}}]),
     "nodes[0].labels.tier", "must be a string, not int"),
    ("flux path not seeded", dict(flux={"path": "clusters/nowhere"}), "flux.path",
     "'clusters/nowhere' is not a directory of gitops/"),
    ("host key", dict(nodes=[NODE | {"role": "controller", "hostKey": "SHA256:q1w2e3"}]), "nodes[0].hostKey",
     "is not an SSH host key; allowed: 'ssh-ed25519 AAAA…' or ECDSA"),
    ("host key data", dict(nodes=[NODE | {"role": "controller", "hostKey": f"ssh-ed25519 {blob('ssh-rsa')}"}]),
     "nodes[0].hostKey", "the key data is not a ssh-ed25519 key"),
    ("RSA host key", dict(nodes=[NODE | {"role": "controller", "hostKey": f"ssh-rsa {blob('ssh-rsa')}"}]),
     "nodes[0].hostKey", "an ssh-rsa host key cannot be checked"),
    ("bastion host key", dict(ssh={"bastion": {"host": "198.51.100.5", "hostKey": "ssh-ed25519 %%%"}},
                              k0s={"apiProxy": "socks5://127.0.0.1:1080"}), "ssh.bastion.hostKey", "not valid base64"),
    ("disruption percent", dict(k0s={"workerDisruptionPercent": 0}), "k0s.workerDisruptionPercent",
     "greater than or equal to 1"),
    ("disruption percent max", dict(k0s={"workerDisruptionPercent": 150}), "k0s.workerDisruptionPercent",
     "less than or equal to 100"),
    ("hosts gone", dict(hostsGone="yes"), "hostsGone", "must be true or false (got 'yes')"),
    ("keep an existing zone", dict(dns={"createZone": False, "keepZone": True}), "dns.keepZone",
     "only allowed with dns.createZone: true"),
    ("backup schedule", dict(backup={"schedule": "every 6 hours"}), "backup.schedule",
     "not a cron schedule; allowed: five fields"),
    ("backup schedule hour", dict(backup={"schedule": "0 24 * * *"}), "backup.schedule",
     "the hour field '24' is not a number 0–23"),
    ("backup schedule step", dict(backup={"schedule": "*/0 * * * *"}), "backup.schedule",
     "the minute step '0' is not a positive number"),
    ("backup retention", dict(backup={"retainDays": 0}), "backup.retainDays", "greater than or equal to 1"),
    ("IPv4 with a letter O", dict(nodes=[NODE | {"role": "controller", "address": "192.168.1O.22"}]),
     "nodes[0].address", "'192.168.1O.22' is not a valid IPv4 address: '1O' is not a number 0–255 (a letter O"),
    ("private IPv4 typo", dict(nodes=[NODE | {"role": "controller", "privateAddress": "10.0.0.l"}]),
     "nodes[0].privateAddress", "not an IP address"),
    ("bastion IPv4 typo", dict(ssh={"bastion": {"host": "198.51.100.o5"}}, k0s={"apiProxy": "socks5://127.0.0.1:1080"}),
     "ssh.bastion.host", "'o5' is not a number 0–255"),
    ("API address typo", dict(k0s={"apiAddress": "192.0.2.1OO"}), "k0s.apiAddress", "'1OO' is not a number 0–255"),
    ("e-mail at example.org", dict(domain="k8s.lab-owner.net", acme={"email": "ops@example.org"}), "acme.email",
     "'ops@example.org' is at example.org, a name reserved for documentation"),
]


@pytest.mark.parametrize("raw_change,path,message", [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_bad_config_is_named_by_field_path(raw_change, path, message, gitops_of_the_fixtures):
    found = problems(changed(**raw_change))
    assert path in found, found
    assert message in found[path]


def test_keys_of_unknown_namespaces_are_errors_naming_the_key():
    with pytest.raises(ConfigError) as caught:
        validate(changed(), "dev", foreign_keys=["cluster-bootstap:protect", "aws:region", "kubernetes:context",
                                                 "pulumi:tags", "awss:region"])
    found = {p.path: p.message for p in caught.value.problems}
    assert set(found) == {"cluster-bootstap:protect", "awss:region"}
    assert "unknown namespace 'cluster-bootstap' (did you mean 'cluster-bootstrap'?)" in found["cluster-bootstap:protect"]
    assert "allowed: cluster-bootstrap (this project), aws, kubernetes" in found["awss:region"]


def test_a_stack_without_its_gitops_path_is_refused_with_the_fix(gitops_of_the_fixtures):
    with pytest.raises(ConfigError) as caught:
        validate(changed(), "staging")
    (problem,) = caught.value.problems
    assert problem.path == "flux.path" and "`make stack STACK=staging` scaffolds clusters/staging" in problem.message


def test_program_refuses_a_typo_in_the_namespace():
    from tooling import offline

    config, secret = fixture_config("prod")
    config["cluster-bootstap:protect"] = config.pop("cluster-bootstrap:protect")
    with pytest.raises(pulumi.RunError, match="cluster-bootstap:protect: unknown namespace"):
        offline.run("prod", preview=True, config=config, secret_keys=secret)


def test_every_problem_is_reported_at_once():
    raw = changed(
        domain="nope",
        ssh={"port": 0},
        acme={"email": "x", "server": "prod"},
        nodes=[NODE | {"role": "master"}, NODE | {"role": "controller"}],
    )
    found = problems(raw)
    assert {"domain", "ssh.port", "acme.email", "acme.server", "nodes[0].role", "nodes[1].name",
            "nodes[1].address"} <= set(found)


AGE_KEY = "AGE-SECRET-KEY-1" + "Q" * 58


def test_secrets_must_be_set_as_secrets():
    raw = changed(ssh={"privateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc"}, sops={"ageKey": AGE_KEY})
    found = problems(raw)
    assert "--secret --path ssh.privateKey" in found["ssh.privateKey"]
    assert "--secret --path sops.ageKey" in found["sops.ageKey"]
    cfg = validate(raw, "dev", frozenset({"ssh", "sops"}))
    assert "BEGIN" not in repr(cfg) and "AGE-SECRET" not in repr(cfg)


def test_secret_values_are_checked_but_never_echoed():
    found = problems(changed(ssh={"privateKey": "hunter2"}, sops={"ageKey": "AGE-SECRET-KEY-1tooshort"}),
                     frozenset({"ssh", "sops"}))
    assert "not a private key" in found["ssh.privateKey"] and "hunter2" not in found["ssh.privateKey"]
    assert "not an age identity" in found["sops.ageKey"] and "tooshort" not in found["sops.ageKey"]


def test_program_raises_one_run_error_before_any_resource():
    with pytest.raises(pulumi.RunError) as caught:
        run_with(domain="bad", nodes=[])
    text = str(caught.value)
    assert "2 problems" in text and "- domain:" in text and "- nodes:" in text
    assert "Traceback" not in text


def test_program_registers_nothing_when_config_is_bad():
    from tooling import offline

    config, _ = fixture_config("dev")
    config["cluster-bootstrap:nodes"] = "[]"
    recording = offline.Recording(stack="dev", preview=True)
    with pytest.raises(pulumi.RunError):
        offline.run("dev", preview=True, config=config, recording=recording)
    assert recording.resources == {}


def test_project_declares_typed_config_and_the_version_channel():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "cluster-bootstrap"
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "venv"}}
    assert project["config"]["protect"] == {"type": "boolean", "default": False,
                                            "description": project["config"]["protect"]["description"]}
    assert set(project["config"]["versions"]["value"]) == {"k0s", "cilium", "certManager", "gitea", "flux",
                                                                "fluxOperator", "localPathProvisioner", "busybox",
                                                                "giteaApp"}


def test_a_whole_keyscan_pins_its_ed25519_key_then_ecdsa():
    from stacks import validators

    rsa, ecdsa, ed = blob("ssh-rsa"), blob("ecdsa-sha2-nistp256"), blob("ssh-ed25519")
    scan = f"# 192.0.2.10:22 SSH-2.0-OpenSSH_9.2\n192.0.2.10 ssh-rsa {rsa}\n192.0.2.10 ecdsa-sha2-nistp256 {ecdsa}\n"
    assert validators.host_key(scan) == f"ecdsa-sha2-nistp256 {ecdsa}"
    assert validators.host_key(scan + f"192.0.2.10 ssh-ed25519 {ed}\n") == f"ssh-ed25519 {ed}"
    assert validators.host_key(f"ssh-ed25519 {ed} root@dev-1") == f"ssh-ed25519 {ed}"


@pytest.mark.parametrize("schedule", ["23 */6 * * *", "0 3 * * 1-5", "*/15 * * * *", "0 0 1,15 * *", "5 4 * * 0,7"])
def test_cron_schedules_kubernetes_takes_are_accepted(schedule):
    from stacks import validators

    assert validators.cron_schedule(schedule) == schedule


def node_address_fields() -> list[str]:
    """Every field of a node that holds an address (by its type in the model), by its YAML name."""
    from stacks import validators
    from stacks.config import NodeConfig

    def checks(annotation) -> list:
        found = [m.func for m in getattr(annotation, "__metadata__", ()) if hasattr(m, "func")]
        return found + [f for arg in getattr(annotation, "__args__", ()) for f in checks(arg)]

    return [info.alias or name for name, info in NodeConfig.model_fields.items()
            if {validators.address, validators.ip} & set(checks(info.annotation) + [
                m.func for m in info.metadata if hasattr(m, "func")])]


@pytest.mark.parametrize("pool,inside", [
    ("192.0.2.200-192.0.2.220", "192.0.2.200"),  # the pool's first address: the ingress address
    ("192.0.2.200-192.0.2.220", "192.0.2.213"),
    ("192.0.2.192/27", "192.0.2.193"),  # a CIDR's first usable address: the ingress address
    ("192.0.2.192/27", "192.0.2.222"),
])
def test_the_pool_may_hold_no_address_of_any_node(pool, inside):
    fields = node_address_fields()
    assert {"address", "privateAddress"} <= set(fields)
    for field in fields:
        node = {"name": "n1", "address": "192.0.2.20", "role": "controller+worker", field: inside}
        found = problems(changed(nodes=[node], cilium={"loadBalancerPool": pool}))
        assert found.get("cilium.loadBalancerPool", "").startswith(
            f"{pool} contains nodes[0].{field} {inside};"), (field, found)


def test_cilium_upgrade_compatibility_is_a_minor_version():
    found = problems(changed(cilium={"loadBalancerPool": "192.0.2.240-192.0.2.250", "upgradeCompatibility": "1.18.4"}))
    assert "cilium.upgradeCompatibility" in found and "the form '1.18'" in found["cilium.upgradeCompatibility"]


@pytest.mark.parametrize("mail,reserved", [
    ("ops@example.com", "example.com"), ("ops@EXAMPLE.NET", "example.net"), ("me@mail.example.org", "example.org"),
    ("me@lab.test", "test"), ("me@cluster.invalid", "invalid"), ("me@box.localhost", "localhost"),
])
def test_lets_encrypt_refuses_e_mail_at_reserved_names_once_the_domain_is_yours(mail, reserved):
    found = problems(changed(domain="k8s.lab-owner.net", acme={"email": mail, "server": "staging"}))
    assert found["acme.email"].startswith(f"{mail!r} is at {reserved}, a name reserved"), found
    assert "pulumi config set --path acme.email" in found["acme.email"]


def test_an_e_mail_one_can_own_is_accepted_and_placeholder_stacks_still_plan():
    cfg = validate(changed(domain="k8s.lab-owner.net", acme={"email": "ops@lab-owner.net"}), "dev")
    assert cfg.acme.email == "ops@lab-owner.net"
    # the committed stacks are documentation examples through and through (domain and e-mail):
    # `make plan` of them works, and names both placeholders
    from stacks.config import placeholders

    raw = raw_config("dev")
    assert validate(raw, "dev").acme.email.endswith("@example.org")
    assert [p.split(" ")[0] for p in placeholders(raw)] == ["domain", "acme.email"]
    assert placeholders(changed(domain="k8s.lab-owner.net", acme={"email": "ops@lab-owner.net"})) == []


@pytest.mark.parametrize("name", ["node-1.lab.example.net", "10.0.0.1.nip.io", "a.b.c.d", "192.168.10.host-22",
                                  "1.2.3.dev"])
def test_host_names_with_numbers_are_still_host_names(name):
    from stacks import validators

    assert validators.address(name) == name


def test_a_pool_outside_every_nodes_subnet_is_warned_about():
    pool_elsewhere = validate(changed(cilium={"loadBalancerPool": "203.0.113.240/28"}), "dev").warnings()
    (warning,) = [w for w in pool_elsewhere if w.startswith("cilium.loadBalancerPool")]
    assert "203.0.113.240/28 shares no subnet with any node address (192.0.2.10" in warning
    assert "only on the nodes' own segment" in warning
    same_segment = validate(raw_config("dev"), "dev").warnings()
    wider_pool = validate(changed(cilium={"loadBalancerPool": "192.0.2.200-192.0.2.210"}), "dev").warnings()
    private = validate(changed(nodes=[{"name": "n1", "address": "198.51.100.9", "privateAddress": "203.0.113.9",
                                       "role": "controller+worker"}],
                               cilium={"loadBalancerPool": "203.0.113.240/28"}), "dev").warnings()
    for found in (same_segment, wider_pool, private):
        assert not [w for w in found if w.startswith("cilium.loadBalancerPool")], found


def test_the_program_logs_the_pool_warning():
    rec = run_with(cilium={"loadBalancerPool": "203.0.113.240/28"})
    assert any(w.startswith("cilium.loadBalancerPool 203.0.113.240/28 shares no subnet") for w in rec.warnings)
