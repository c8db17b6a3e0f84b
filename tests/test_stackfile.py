"""Stack files read as the Pulumi CLI hands them to the program: YAML 1.2, defaults from
Pulumi.yaml, objects as JSON, and secrets set with `--secret --path` anywhere in a value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tooling import stackfile

ROOT = Path(__file__).resolve().parent.parent
# What `pulumi config set --secret --path ssh.privateKey …` and `--path sops.ageKey …` leave behind.
EDITED = """\
config:
  aws:region: eu-central-1
  cluster-bootstrap:domain: lab.example.net
  cluster-bootstrap:protect: false
  cluster-bootstrap:ssh:
    user: admin
    privateKey:
      secure: v1:AAABAC9oTUVVm1d7:l1WzqpuCDVmQ7gI3ZgZz3Q==
  cluster-bootstrap:nodes:
    - name: lab-1
      address: 192.0.2.31
      role: controller+worker
  cluster-bootstrap:cilium:
    loadBalancerPool: 192.0.2.224/28
  cluster-bootstrap:acme:
    email: me@example.net
  cluster-bootstrap:sops:
    ageKey:
      secure: v1:EBDTQpu0VUn3Ie0S:Pd1wjN6mCYr8Q0Vj8wI0Ag==
"""


def project(tmp_path: Path, stack_text: str, stack: str = "dev") -> Path:
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(stack_text)
    return tmp_path


def test_nested_secure_values_make_the_whole_key_secret_with_stand_ins(tmp_path):
    config, secret = stackfile.read("dev", project(tmp_path, EDITED))
    assert secret == ["cluster-bootstrap:sops", "cluster-bootstrap:ssh"]
    assert '"user": "admin"' in config["cluster-bootstrap:ssh"]
    assert "v1:" not in "".join(config.values())  # ciphertext never reaches the program
    assert "PRIVATE KEY-----" in config["cluster-bootstrap:ssh"]
    assert config["cluster-bootstrap:sops"].startswith('{"ageKey": "AGE-SECRET-KEY-1')


def test_plan_of_a_stack_edited_as_the_readme_says_succeeds_and_keeps_secrets_secret(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tooling.plan", "--project-dir", str(project(tmp_path, EDITED)),
                           "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Node node-lab-1" in done.stdout and "plain text" not in done.stdout + done.stderr
    stand_in = stackfile.STAND_INS[("cluster-bootstrap:ssh", "privateKey")]
    assert stand_in.splitlines()[1] not in done.stdout + (tmp_path / "out" / "dev" / "graph.dot").read_text()


def test_defaults_and_values_come_from_pulumi_yaml_and_bare_keys_are_the_projects(tmp_path):
    text = (FIXTURES / "Pulumi.dev.yaml").read_text().replace("cluster-bootstrap:domain:", "domain:")
    config, _ = stackfile.read("dev", project(tmp_path, text))
    assert config["cluster-bootstrap:domain"] == "dev.k8s.example.org"
    versions = stackfile.load_yaml(ROOT / "Pulumi.yaml")["config"]["versions"]["value"]
    assert config["cluster-bootstrap:versions"] == stackfile._encode(versions)


def test_yaml_1_2_booleans_as_the_cli_reads_them(tmp_path):
    text = (FIXTURES / "Pulumi.dev.yaml").read_text().replace("cluster-bootstrap:protect: false",
                                                              "cluster-bootstrap:protect: yes")
    config, _ = stackfile.read("dev", project(tmp_path, text))
    assert config["cluster-bootstrap:protect"] == "yes"  # a string to go-yaml v3, not a boolean
    config, _ = stackfile.read("dev", stack_dir=FIXTURES)
    assert config["cluster-bootstrap:protect"] == "false"


def test_a_missing_or_malformed_stack_file_is_a_clear_error(tmp_path):
    with pytest.raises(stackfile.StackFileError, match="no stack file Pulumi.staging.yaml"):
        stackfile.read("staging", project(tmp_path, "config: {}\n"))
    with pytest.raises(stackfile.StackFileError, match="expected a mapping with a `config:` mapping"):
        stackfile.read("dev", project(tmp_path, "config: [1, 2]\n"))


BROKEN = {
    # a mis-indented key: the common slip when adding a node
    "indent": ("config:\n  cluster-bootstrap:nodes:\n    - name: dev-1\n     address: 192.0.2.10\n", 4),
    "tab": ("config:\n  aws:region: us-east-1\n\tcluster-bootstrap:protect: false\n", 3),
    "unclosed quote": ('config:\n  cluster-bootstrap:acme:\n    email: "ops@lab-owner.net\n', 3),
    # go-yaml v3, which the Pulumi CLI reads stack files with, refuses a key given twice
    "duplicate key": ("config:\n  cluster-bootstrap:protect: false\n  cluster-bootstrap:protect: true\n", 3),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_yaml_error_is_one_line_naming_file_line_and_column(tmp_path, case):
    text, line = BROKEN[case]
    proj = project(tmp_path, text)
    done = subprocess.run([sys.executable, "-m", "tooling.plan", "--project-dir", str(proj), "--out",
                           str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    (message,) = done.stderr.splitlines()  # one line, no traceback
    assert message.startswith(f"error: {proj / 'Pulumi.dev.yaml'}:{line}:"), message
    assert "invalid YAML" in message and done.stdout == ""


def test_a_yaml_error_in_the_working_directory_is_named_as_typed(tmp_path):
    proj = project(tmp_path, BROKEN["indent"][0])
    done = subprocess.run([sys.executable, "-m", "tooling.plan", "--project-dir", ".", "--out", "out"], cwd=proj,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2 and done.stderr.startswith("error: Pulumi.dev.yaml:4:6: invalid YAML"), done.stderr
