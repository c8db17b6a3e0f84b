"""A new user's path on a fresh copy of the project: `make stack`, `make plan`, `make kubeconfig`,
`make help`, all as the README says."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.pins import ROOT

# The stack a newcomer scaffolds in these tests. The user may have made one of that name already
# (`make stack STACK=staging`, as the README says): the copy leaves it out, whatever the user has.
NEW = "staging"
KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters:\n- name: k0s\n  cluster:\n    server: https://192.0.2.10:6443\n"


@pytest.fixture
def fresh(tmp_path) -> Path:
    """The committed files of this project in a new directory (a clone), sharing its virtualenv."""
    copy = tmp_path / "clone"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, files):
        if not (ROOT / name.decode()).is_file():
            continue  # deleted in the working tree
        target = copy / name.decode()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ROOT / name.decode()).read_bytes())
        target.chmod((ROOT / name.decode()).stat().st_mode)
    (copy / "venv").symlink_to(ROOT / "venv")
    for path in (f"Pulumi.{NEW}.yaml", f"gitops/clusters/{NEW}", f"gitops/infrastructure/overlays/{NEW}"):
        if (copy / path).is_dir():
            shutil.rmtree(copy / path)
        elif (copy / path).exists():
            (copy / path).unlink()
    return copy


def make(project: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    # -o: the shared virtualenv is installed already
    return subprocess.run(["make", "--no-print-directory", "-o", "venv/.runtime", *args], cwd=project,
                          capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})


def test_make_stack_then_make_plan_works_on_a_fresh_clone(fresh):
    made = make(fresh, "stack", "STACK=staging")
    assert made.returncode == 0, made.stderr
    for path in ("Pulumi.staging.yaml", "gitops/clusters/staging/kustomization.yaml",
                 "gitops/infrastructure/overlays/staging/kustomization.yaml"):
        assert (fresh / path).is_file(), path
    stack = (fresh / "Pulumi.staging.yaml").read_text()
    assert stack.startswith("# Stack `staging`") and "192.0.2.10" in stack
    planned = make(fresh, "plan", "STACK=staging")
    assert planned.returncode == 0, planned.stderr
    assert "Offline plan of stack 'staging'" in planned.stdout and "Node node-staging-1" in planned.stdout
    kustomize = ROOT / "venv" / "tools" / "bin" / "kubectl"
    built = subprocess.run([str(kustomize), "kustomize", str(fresh / "gitops/clusters/staging")],
                           capture_output=True, text=True, check=True)
    labels = {doc["metadata"]["labels"]["cluster-bootstrap/stack"] for doc in yaml.safe_load_all(built.stdout) if doc}
    assert labels == {"staging"}


def test_make_stack_never_overwrites_and_refuses_bad_names(fresh):
    assert make(fresh, "stack", "STACK=staging").returncode == 0
    before = (fresh / "Pulumi.staging.yaml").read_text()
    again = make(fresh, "stack", "STACK=staging")
    assert again.returncode != 0 and "exists already" in again.stderr
    assert (fresh / "Pulumi.staging.yaml").read_text() == before
    bad = make(fresh, "stack", "STACK=Staging_1")
    assert bad.returncode != 0 and "use 1-40 lowercase letters" in bad.stderr
    assert make(fresh, "stack").returncode != 0  # STACK must be given


def test_plan_of_a_stack_without_a_file_tells_how_to_make_one(fresh):
    done = make(fresh, "plan", "STACK=staging")
    assert done.returncode != 0
    assert "no stack file Pulumi.staging.yaml" in done.stderr and "make stack STACK=staging" in done.stderr
    assert "Traceback" not in done.stderr


def test_make_kubeconfig_writes_the_secret_output_privately(fresh, tmp_path):
    stacks = tmp_path / "pulumi-stacks"
    stacks.mkdir()
    (stacks / "dev.json").write_text(json.dumps({"outputs": {"kubeconfig": KUBECONFIG}, "secret": ["kubeconfig"]}))
    env = {"PATH": f"{ROOT / 'tests' / 'standins'}:{os.environ['PATH']}", "FAKE_PULUMI_STACKS": str(stacks)}
    done = make(fresh, "kubeconfig", "STACK=dev", env=env)
    assert done.returncode == 0, done.stderr
    written = fresh / "build" / "dev" / "kubeconfig"
    assert written.read_text() == KUBECONFIG + "\n"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert done.stdout.strip() == f"export KUBECONFIG={written}" and "server:" not in done.stdout + done.stderr
    failed = make(fresh, "kubeconfig", "STACK=nope", env=env)
    assert failed.returncode != 0 and "no stack named 'nope'" in failed.stderr
    assert not (fresh / "build" / "nope" / "kubeconfig").exists()
    assert not list((fresh / "build" / "nope").glob("*"))


def test_make_help_lists_every_target_once(fresh):
    done = make(fresh, "help")
    listed = [line.split()[1] for line in done.stdout.splitlines()]
    phony = (fresh / "Makefile").read_text().split(".PHONY:")[1].splitlines()[0].split()
    assert sorted(listed) == sorted(t for t in phony if t != "sshd")
