"""Node (stage 1): SSH connection from config, host phases in order, CA trust, k0s staging."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from tests.conftest import raw_config, run_with
from tests.pins import VERSIONS

COMMAND = "command:remote:Command"
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-key-material\n-----END OPENSSH PRIVATE KEY-----\n"


def node_children(rec, name):
    (node,) = [r for r in rec.resources.values() if r.type == "cluster-bootstrap:hosts:Node" and r.name == name]
    return {c.name.removeprefix(name + "-"): c for c in rec.children(node.urn)}


def test_one_node_per_host_with_three_phases(rec):
    nodes = rec.of_type("cluster-bootstrap:hosts:Node")
    assert len(nodes) == {"dev": 1, "prod": 5}[rec.stack]
    for node in nodes:
        assert set(node_children(rec, node.name)) == {"prepare", "trust-ca", "stage-k0s"}


def test_phases_run_after_host_preparation(preview):
    parts = node_children(preview, "node-dev-1" if preview.stack == "dev" else "node-cp-1")
    for phase in ("trust-ca", "stage-k0s"):
        assert parts["prepare"].urn in parts[phase].dependencies


def test_connection_uses_agent_dial_limits_and_bastion(up):
    parts = node_children(up, "node-dev-1" if up.stack == "dev" else "node-worker-1")
    conn = parts["prepare"].inputs["connection"]
    assert conn["user"] == "root" and conn["port"] == 22
    assert (conn["dialErrorLimit"], conn["perDialTimeout"]) == (10, 15)
    assert "privateKey" not in conn  # no key configured: pulumi-command uses SSH_AUTH_SOCK (ssh-agent)
    if up.stack == "prod":
        assert conn["proxy"]["host"] == "198.51.100.5" and conn["proxy"]["user"] == "root"
    else:
        assert "proxy" not in conn


def test_private_key_from_config_is_secret():
    rec = run_with(preview=False, secret=["ssh"], ssh={"user": "admin", "privateKey": KEY, "port": 2222})
    prepare = node_children(rec, "node-dev-1")["prepare"]
    assert prepare.inputs["connection"]["privateKey"] == KEY
    assert prepare.is_secret("connection")
    # A non-root user runs every script through sudo.
    assert prepare.inputs["create"].startswith("sudo -n env ")
    assert prepare.inputs["connection"]["port"] == 2222


def test_trust_ca_carries_the_internal_ca_and_removes_it_on_delete(up):
    parts = node_children(up, "node-dev-1" if up.stack == "dev" else "node-cp-1")
    create = parts["trust-ca"].inputs["create"]
    encoded = create.split("CA_CERT_B64=")[1].split()[0]
    assert base64.b64decode(encoded).decode().startswith("-----BEGIN CERTIFICATE-----")
    assert "REGISTRY_HOST=registry." in create
    assert "ACTION=remove" in parts["trust-ca"].inputs["delete"]
    (cert,) = up.of_type("tls:index/selfSignedCert:SelfSignedCert")
    assert cert.urn in parts["trust-ca"].property_dependencies["create"]


def test_k0s_is_staged_at_the_pinned_version(rec):
    parts = node_children(rec, "node-dev-1" if rec.stack == "dev" else "node-cp-1")
    create = parts["stage-k0s"].inputs["create"]
    assert f"K0S_VERSION={VERSIONS['k0s']}" in create
    assert "K0S_URL='https://github.com/k0sproject/k0s/releases/download/{version}/k0s-{version}-{arch}'" in create


def test_airgap_uploads_binary_and_bundle(tmp_path):
    binary, bundle = tmp_path / "k0s", tmp_path / "bundle.tar"
    binary.write_bytes(b"k0s")
    bundle.write_bytes(b"images")
    rec = run_with(k0s={"binaryPath": str(binary), "airgapBundle": str(bundle),
                        "sha256": {"amd64": "a" * 64}})
    parts = node_children(rec, "node-dev-1")
    assert {"upload-k0s", "upload-images"} <= set(parts)
    stage = parts["stage-k0s"]
    assert {parts["upload-k0s"].urn, parts["upload-images"].urn} <= set(stage.dependencies)
    assert "K0S_UPLOADED=" in stage.inputs["create"] and f"K0S_SHA256=amd64={'a' * 64}" in stage.inputs["create"]
    cfg_create = rec.named("k0s-dev-1").inputs["create"]
    config = base64.b64decode(cfg_create.split("K0S_CONFIG_B64=")[1].split()[0]).decode()
    assert "default_pull_policy: Never" in config


def test_internal_ca_is_long_lived_and_protected_in_prod(rec):
    (cert,) = rec.of_type("tls:index/selfSignedCert:SelfSignedCert")
    key = rec.resources[cert.property_dependencies["privateKeyPem"][0]]
    assert cert.inputs["isCaCertificate"] is True and cert.inputs["validityPeriodHours"] == 87600
    assert key.protect is cert.protect is (rec.stack == "prod")
    assert "privateKeyPem" in key.additional_secret_outputs


def test_builds_from_its_args_alone():
    from components.node import Jump, Node, NodeArgs, SshAccess
    from tests import standalone

    def program():
        Node("edge", NodeArgs(
            hostname="edge-1", runs_pods=True, ca_cert_pem="-----BEGIN CERTIFICATE-----\n",
            registry_host="registry.example.org", k0s_version=VERSIONS["k0s"],
            download_url="https://mirror.example.org/{version}/k0s-{arch}",
            ssh=SshAccess(address="192.0.2.70", port=2222, user="ops", private_key=None, dial_error_limit=3,
                          per_dial_timeout=5, bastion=Jump("198.51.100.5", 22, "jump"))))

    rec = standalone.build(program)
    conn = rec.named("edge-prepare").inputs["connection"]
    assert (conn["host"], conn["port"], conn["user"], conn["proxy"]["user"]) == ("192.0.2.70", 2222, "ops", "jump")
    assert rec.named("edge-prepare").inputs["create"].startswith("sudo -n env ")


ORACLE = Path(__file__).resolve().parent.parent / "venv" / "tools" / "bin" / "ssh-host-key"


def keyscan(sshd) -> str:
    """What `ssh-keyscan` (OpenSSH, independent of this program) prints for the test sshd."""
    done = subprocess.run(["ssh-keyscan", "-p", str(sshd.port), "127.0.0.1"], capture_output=True, text=True,
                          timeout=30)
    assert done.stdout.strip(), done.stderr
    return done.stdout


def connects(sshd, host_key: str) -> subprocess.CompletedProcess:
    """golang.org/x/crypto/ssh, called as pulumi-command v1.2.1 calls it, dialling the test sshd."""
    return subprocess.run([str(ORACLE), f"127.0.0.1:{sshd.port}", sshd.user, str(sshd.key), host_key],
                          capture_output=True, text=True, timeout=60)


def test_host_key_pasted_from_ssh_keyscan_is_the_one_pulumi_command_accepts(sshd):
    if not ORACLE.exists():
        pytest.skip("the ssh-host-key oracle is not built (needs go; `make test` builds it)")
    rec = run_with(preview=False, nodes=[{"name": "dev-1", "address": "192.0.2.10", "role": "controller+worker",
                                          "hostKey": keyscan(sshd)}])
    pinned = node_children(rec, "node-dev-1")["prepare"].inputs["connection"]["hostKey"]
    assert connects(sshd, pinned).returncode == 0
    # the same check refuses a host that shows another key
    other = subprocess.run(["ssh-keygen", "-y", "-f", str(sshd.key)], capture_output=True, text=True).stdout
    refused = connects(sshd, other)
    assert refused.returncode == 1 and "host key mismatch" in refused.stderr
    assert not rec.warnings


def test_every_step_of_a_host_checks_its_key_and_the_bastions():
    node_key = "ssh-ed25519 " + base64.b64encode(b"\0\0\0\x0bssh-ed25519\0\0\0\x20" + bytes(32)).decode()
    jump_key = "ssh-ed25519 " + base64.b64encode(b"\0\0\0\x0bssh-ed25519\0\0\0\x20" + bytes([1]) * 32).decode()
    config = raw_config("prod")
    nodes = [{**n, "hostKey": f"{n['address']} {node_key} root@{n['name']}"} for n in config["nodes"]]
    rec = run_with(stack="prod", preview=False, nodes=nodes,
                   ssh={**config["ssh"], "bastion": {**config["ssh"]["bastion"], "hostKey": jump_key}})
    steps = rec.of_type(COMMAND) + rec.of_type("command:remote:CopyToRemote")
    assert steps
    for step in steps:
        connection = step.inputs["connection"]
        assert connection["hostKey"] == node_key, step.name
        assert connection["proxy"]["hostKey"] == jump_key, step.name
    assert rec.warnings == []


def test_hosts_without_a_key_are_named_in_a_warning(up):
    # the fixtures pin no host keys: every node (and prod's bastion) is warned about
    names = [n["name"] for n in raw_config(up.stack)["nodes"]]
    assert len(up.warnings) == len(names) + (up.stack == "prod")
    for index, name in enumerate(names):
        assert f"nodes[{index}] ({name}): no hostKey" in up.warnings[index]
