"""Rebuild without loss, for real: the backup CronJob's program (components/jobs/gitops-backup.sh)
with its own environment and its ServiceAccount's token, against a real Gitea and the twin's real
API server (RBAC as the program declares it), into moto's S3 with the program's IAM policy
enforced; then a rebuilt cluster's seed Job restores the repository into a new, empty Gitea."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.test_backup import WILDCARD, Bucket, enforced, tls_secret
from tests.twin import gitea, jobs
from tests.twin.recording import record

SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "ownerReferences")


@pytest.fixture
def rec(gitea_built):
    return record("dev")


@pytest.fixture
def bucket(aws, rec):
    return Bucket(aws, rec)


@pytest.fixture
def cluster(fresh_twin, rec, tmp_path):
    """The twin with what the backup layer declares applied (its namespace, ServiceAccount, Role
    and RoleBinding), the wildcard certificate's Secret as cert-manager leaves it, another Secret
    beside it, and the CronJob's ServiceAccount token."""
    twin = fresh_twin(rec)
    for reg in rec.resources.values():
        if reg.name in ("gitea-namespace",) or (reg.name.startswith("gitops-backup-") and reg.type.split(":")[1] in (
                "core/v1", "rbac.authorization.k8s.io/v1") and reg.type.rsplit(":", 1)[1] in
                ("ServiceAccount", "Role", "RoleBinding")):
            manifest = {k: v for k, v in reg.inputs.items() if k != "__defaults"}
            twin.kubectl("apply", "--server-side", "--field-manager=pulumi", "-f", "-", input=yaml.safe_dump(manifest))
    secret = tls_secret()
    for field in SERVER_FIELDS:
        secret["metadata"].pop(field)
    twin.kubectl("create", "-f", "-", input=yaml.safe_dump(secret))
    twin.kubectl("-n", WILDCARD[0], "create", "secret", "generic", "not-for-backups", "--from-literal=k=v")
    cron = rec.named("gitops-backup-cronjob")
    account = cron.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["serviceAccountName"]
    token = twin.kubectl("-n", cron.inputs["metadata"]["namespace"], "create", "token", account).stdout.strip()
    (tmp_path / "token").write_text(token)
    return twin, {"KUBE_API": twin.server, "KUBE_TOKEN_FILE": str(tmp_path / "token"), "KUBE_CA": str(twin.pki.ca)}


def backup(rec, running, work: Path, bucket: Bucket, kube: dict) -> subprocess.CompletedProcess:
    """The CronJob's container, with its ServiceAccount's token and moto's URL for its bucket."""
    return jobs.run(rec, "gitops-backup-cronjob", work, running.resolving,
                    {**kube, "S3_URL": bucket.env["S3_URL"], **bucket.credentials()})


def seed(rec, running, work: Path, bucket: Bucket) -> subprocess.CompletedProcess:
    return jobs.seed(rec, work, running.resolving, bucket, **bucket.credentials())


def refs(running, env) -> dict[str, str]:
    user, password = running.admin
    out = subprocess.run(["git", "ls-remote", f"http://{user}:{password}@{running.address}:3000/{env['ORG']}/{env['REPO']}.git"],
                         capture_output=True, text=True, check=True).stdout
    return {ref: sha for sha, ref in (line.split() for line in out.splitlines()) if ref != "HEAD"}


def user_pushes(running, env, work: Path) -> None:
    """Work people did after the seed: commits on main, a branch, an annotated tag."""
    user, password = running.admin
    git = ["git", "-c", "user.name=dev", "-c", "user.email=dev@example.org"]
    subprocess.run([*git, "clone", "-q", f"http://{user}:{password}@{running.address}:3000/{env['ORG']}/{env['REPO']}.git",
                    str(work)], check=True, capture_output=True)
    for i in range(2):
        (work / f"app-{i}.yaml").write_text(f"n: {i}\n")
        subprocess.run([*git, "-C", str(work), "add", "-A"], check=True)
        subprocess.run([*git, "-C", str(work), "commit", "-q", "-m", f"app {i}"], check=True)
    subprocess.run([*git, "-C", str(work), "branch", "feature"], check=True)
    subprocess.run([*git, "-C", str(work), "tag", "-a", "v1", "-m", "release 1"], check=True)
    subprocess.run([*git, "-C", str(work), "push", "-q", "origin", "main", "feature", "v1"], check=True,
                   capture_output=True)


def test_backup_then_rebuild_round_trips_through_real_gitea_api_server_and_s3(rec, bucket, cluster, tmp_path):
    twin, kube = cluster
    env = jobs.environment(rec, rec.named("gitea-seed"))
    with gitea.running(rec, tmp_path / "gitea-a") as before:
        assert seed(rec, before, tmp_path / "seed-a", bucket).returncode == 0
        user_pushes(before, env, tmp_path / "work")
        original = refs(before, env)
        assert {r for r in original if not r.endswith("^{}")} == {"refs/heads/main", "refs/heads/feature", "refs/tags/v1"}
        with enforced():
            done = backup(rec, before, tmp_path / "backup", bucket, kube)
        assert done.returncode == 0, done.stdout + done.stderr
    saved = yaml.safe_load(bucket.read(f"certificates/{WILDCARD[0]}/{WILDCARD[1]}.yaml"))
    assert saved["data"] == tls_secret()["data"]
    for field in SERVER_FIELDS:  # what the real API server added is not carried to the new cluster
        assert field not in saved["metadata"], field
    last = yaml.safe_load(bucket.read("last-good-backup"))
    assert last["refs"] == 3 and last["head"] == original["refs/heads/main"]

    # the cluster is rebuilt: a new, empty Gitea; the seed Job finds the bundle
    with gitea.running(rec, tmp_path / "gitea-b") as after:
        with enforced():
            restored = seed(rec, after, tmp_path / "seed-b", bucket)
            assert restored.returncode == 0, restored.stdout + restored.stderr
            again = seed(rec, after, tmp_path / "seed-b2", bucket)
        assert "restored 3 branches and tags" in restored.stdout
        assert refs(after, env) == original  # every branch, tag and commit
        assert again.returncode == 0 and "left as it is" in again.stdout and refs(after, env) == original
    for secret in (env["GITEA_PASSWORD"], bucket.secret):
        assert secret not in done.stdout + done.stderr + restored.stdout + restored.stderr


def test_the_backup_account_may_read_the_certificate_secret_and_nothing_else(rec, cluster):
    """The real API server, with RBAC as the program declares it: the CronJob's token reads the
    wildcard certificate's Secret, and is refused any other Secret, and listing."""
    twin, kube = cluster
    token = Path(kube["KUBE_TOKEN_FILE"]).read_text()

    def status(path: str) -> str:
        return subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", kube["KUBE_CA"],
                               "-H", f"Authorization: Bearer {token}", f"{kube['KUBE_API']}{path}"],
                              capture_output=True, text=True).stdout

    assert status(f"/api/v1/namespaces/{WILDCARD[0]}/secrets/{WILDCARD[1]}") == "200"
    assert status(f"/api/v1/namespaces/{WILDCARD[0]}/secrets/not-for-backups") == "403"
    assert status(f"/api/v1/namespaces/{WILDCARD[0]}/secrets") == "403"
    assert status("/api/v1/namespaces/gitea/secrets/gitea-admin") == "403"


def test_an_empty_repository_never_replaces_the_last_bundle(rec, bucket, cluster, tmp_path):
    twin, kube = cluster
    env = jobs.environment(rec, rec.named("gitea-seed"))
    with gitea.running(rec, tmp_path / "gitea") as running:
        assert seed(rec, running, tmp_path / "seed", bucket).returncode == 0
        with enforced():
            assert backup(rec, running, tmp_path / "backup-1", bucket, kube).returncode == 0
        kept = bucket.versions(f"gitops/{env['ORG']}/{env['REPO']}.bundle")
        # the repository is recreated empty by hand, through Gitea's API
        user, password = running.admin
        for method, path, body in (("DELETE", f"/repos/{env['ORG']}/{env['REPO']}", None),
                                   ("POST", f"/orgs/{env['ORG']}/repos", f'{{"name":"{env["REPO"]}","private":true}}')):
            subprocess.run(["curl", "-fsS", "-o", "/dev/null", "-u", f"{user}:{password}", "-X", method,
                            *(["-H", "Content-Type: application/json", "--data", body] if body else []),
                            f"{running.direct}/api/v1{path}"], check=True)
        with enforced():
            failed = backup(rec, running, tmp_path / "backup-2", bucket, kube)
    assert failed.returncode != 0 and "has no refs: the last bundle in the bucket is left as it is" in failed.stderr
    assert bucket.versions(f"gitops/{env['ORG']}/{env['REPO']}.bundle") == kept


def test_seeding_never_overwrites_history(rec, bucket, tmp_path):
    """New seed content (a changed gitops/) on a repository with history pushes nothing."""
    env = jobs.environment(rec, rec.named("gitea-seed"))
    with gitea.running(rec, tmp_path / "gitea") as running:
        assert seed(rec, running, tmp_path / "seed-1", bucket).returncode == 0
        before = refs(running, env)
        content = rec.named("gitea-seed-content")
        content.inputs["binaryData"]["gitops.tar"] = base64.b64encode(other_content()).decode()
        again = seed(rec, running, tmp_path / "seed-2", bucket)
        assert again.returncode == 0, again.stderr
        assert refs(running, env) == before and "left as it is" in again.stdout


def other_content() -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("clusters/dev/other.yaml")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"{}\n"))
    return buffer.getvalue()


def test_certificates_go_back_byte_for_byte_before_cert_manager_runs(rec, bucket, cluster, tmp_path, fleet):
    """The real backup's certificate Secret, put back by the restore step as the program renders
    it (on the k0s stand-in's first controller), as the API server accepts it."""
    from tests.conftest import run_stack
    from tests.hostrun import log_lines, rendered
    from tests.manifests import validate

    twin, kube = cluster
    with gitea.running(rec, tmp_path / "gitea") as running:
        assert seed(rec, running, tmp_path / "seed", bucket).returncode == 0
        with enforced():
            assert backup(rec, running, tmp_path / "backup", bucket, kube).returncode == 0
    saved = yaml.safe_load(bucket.read(f"certificates/{WILDCARD[0]}/{WILDCARD[1]}.yaml"))
    validate(saved)
    controller = fleet.first_controller()
    script, env = rendered(run_stack("dev", preview=False), "cert-manager-restore")
    env.update(S3_URL=bucket.env["S3_URL"])
    with enforced():
        done = fleet.run(script, controller, bucket.credentials(), **env)
        assert done.returncode == 0, done.stderr
        again = fleet.run(script, controller, bucket.credentials(), **env)
    assert "restored secret kube-system/wildcard-tls from the backup" in done.stderr
    assert "secret kube-system/wildcard-tls exists: left as it is" in again.stderr
    restored = yaml.safe_load((fleet.cluster / "objects/secret/kube-system/wildcard-tls").read_text())
    original = tls_secret()
    assert restored["data"] == original["data"] and restored["type"] == original["type"]
    for part in ("annotations", "labels", "name", "namespace"):
        assert restored["metadata"][part] == original["metadata"][part], part
    assert len([c for c in log_lines(controller) if c.startswith("k0s kubectl create")]) == 1
    # and the real API server takes it as the restore step sends it
    twin.kubectl("delete", "secret", "-n", WILDCARD[0], WILDCARD[1])
    twin.kubectl("create", "-f", "-", input=yaml.safe_dump(saved))
