"""Node (stage 1): SSH connection from config, host phases in order, CA trust, k0s staging."""

from __future__ import annotations

import base64

from tests.conftest import run_with
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
