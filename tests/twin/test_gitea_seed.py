"""The seed Job for real: components/jobs/gitea-seed.sh with exactly the environment, Secrets and
ConfigMap content the program gives the Job, against a real Gitea run with the configuration the
pinned chart renders, the program's admin account and SSH host key; the in-cluster names resolve
to it. What it created is read back through Gitea's own API and database."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from components.gitea import ADMIN_USER
from tests.twin import gitea, jobs
from tests.twin.recording import record


@pytest.fixture
def server(tmp_path, gitea_built):
    rec = record("dev")
    with gitea.running(rec, tmp_path / "gitea") as running:
        print(f"twin: Gitea {running.version} (versions.giteaApp {gitea.VERSIONS['giteaApp']})")
        yield rec, running


@pytest.fixture
def bucket(aws):
    """moto's S3 with the backup bucket and identity as the program declares them (empty)."""
    from tests.test_backup import Bucket

    return Bucket(aws, record("dev"))


def seed(server, work: Path, bucket, **overrides) -> subprocess.CompletedProcess:
    rec, running = server
    return jobs.seed(rec, work, running.resolving, bucket, **overrides)


def job_env(rec) -> dict[str, str]:
    return jobs.environment(rec, rec.named("gitea-seed"))


def clone(running, env: dict[str, str], into: Path) -> Path:
    user, password = running.admin
    subprocess.run(["git", "clone", "-q", f"http://{user}:{password}@{running.address}:3000/{env['ORG']}/{env['REPO']}.git",
                    str(into)], check=True, capture_output=True)
    return into


def test_the_seed_creates_everything_through_giteas_api_and_pushes_once(server, tmp_path, bucket):
    rec, running = server
    env = job_env(rec)
    first = seed(server, tmp_path / "run-1", bucket, **bucket.credentials())
    assert first.returncode == 0, first.stdout + first.stderr
    org, repo = env["ORG"], env["REPO"]
    assert running.api(f"/orgs/{org}")["visibility"] == "private"
    found = running.api(f"/repos/{org}/{repo}")
    assert (found["private"], found["default_branch"]) == (True, "main")  # its content: the clone below
    (key,) = running.api(f"/repos/{org}/{repo}/keys")
    assert key["read_only"] is True and key["title"] == env["DEPLOY_KEY_TITLE"]
    assert key["key"].split()[:2] == env["DEPLOY_KEY"].split()[:2]
    (hook,) = running.api(f"/repos/{org}/{repo}/hooks")
    assert (hook["type"], hook["events"], hook["branch_filter"], hook["active"]) == ("gitea", ["push"], "main", True)
    assert hook["config"]["url"] == env["WEBHOOK_URL"] and hook["config"]["content_type"] == "json"
    # the secret Gitea signs deliveries with (not shown by its API): what the Receiver's Secret holds
    assert running.sql(f"select secret from webhook where id = {hook['id']}") == [(env["WEBHOOK_SECRET"],)]
    files = sorted(str(p.relative_to(tmp_path / "clone")) for p in clone(running, env, tmp_path / "clone").rglob("*")
                   if p.is_file() and ".git" not in p.parts)
    assert ".sops.yaml" in files and any(f.startswith("clusters/dev/") for f in files)
    assert "no backup of platform/gitops in the bucket: seeding it" in first.stdout
    assert env["GITEA_PASSWORD"] not in first.stdout + first.stderr
    assert env["WEBHOOK_SECRET"] not in first.stdout + first.stderr

    second = seed(server, tmp_path / "run-2", bucket, **bucket.credentials())
    assert second.returncode == 0, second.stdout + second.stderr
    assert "left as it is" in second.stdout
    assert len(running.api(f"/repos/{org}/{repo}/keys")) == 1 and len(running.api(f"/repos/{org}/{repo}/hooks")) == 1
    log = subprocess.run(["git", "-C", str(tmp_path / "clone"), "pull", "-q"], capture_output=True)
    assert log.returncode == 0
    commits = subprocess.run(["git", "-C", str(tmp_path / "clone"), "rev-list", "--count", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert commits == "1"


def test_the_seed_fails_clearly_with_a_password_gitea_does_not_know(server, tmp_path, bucket):
    done = seed(server, tmp_path / "run", bucket, GITEA_PASSWORD="not-the-admin-password")
    assert done.returncode != 0 and "HTTP 401" in done.stderr
    assert ADMIN_USER == job_env(server[0])["GITEA_USER"]
