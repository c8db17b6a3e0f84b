"""etcd and the cluster PKI off-cluster (issue #23, first slice): each controller's backup timer,
the backup program over the real sshd against the k0s stand-in and moto's S3 with IAM enforced
(encrypted with age before upload, decrypted here with pyrage), the restore on `pulumi up`
(k0s.restoreFrom) onto a wiped first controller, and where the program puts these steps."""

from __future__ import annotations

import base64
import io
import re
import tarfile
from pathlib import Path

import pyrage
import pytest

from components import remote
from stacks.config import ConfigError, validate
from tests.conftest import raw_config, run_stack, run_with
from tests.fleet import CONFIG, VERSION
from tests.pins import PREVIOUS
from tests.hostrun import MUTATING, log_lines, rendered
from tests.test_backup import Bucket, enforced

IDENTITY = pyrage.x25519.Identity.generate()
RECIPIENT = str(IDENTITY.to_public())
KEY_FORM = re.compile(r"etcd/cp-1/[0-9]{8}T[0-9]{6}Z\.tar\.gz\.age")


@pytest.fixture
def bucket(aws):
    return Bucket(aws, run_stack("dev", preview=False))


def backup_env(bucket: Bucket, node: str) -> dict[str, str]:
    return {"NODE_NAME": node, "AGE_RECIPIENT": RECIPIENT, "S3_URL": bucket.env["S3_URL"], "S3_REGION": "us-east-1"}


def restore(fleet, root: Path, bucket: Bucket, source: str = "latest"):
    with enforced():
        return fleet.run("k0s-restore.sh", root, {**bucket.credentials(), "AGE_IDENTITY": str(IDENTITY)},
                         RESTORE_FROM=source, S3_URL=bucket.env["S3_URL"], S3_REGION="us-east-1")


def etcd_keys(bucket: Bucket) -> list[str]:
    listed = bucket.aws("s3").list_objects_v2(Bucket=bucket.name, Prefix="etcd/")
    return [o["Key"] for o in listed.get("Contents", [])]


def state(root: Path) -> tuple[bytes, bytes]:
    """The controller's CA key and etcd data (the stand-in gives each cluster bytes of its own)."""
    return ((root / "var/lib/k0s/pki/ca.key").read_bytes(), (root / "var/lib/k0s/etcd/member/snap/db").read_bytes())


def save_paths(root: Path) -> list[Path]:
    """Where `k0s backup` wrote its plain archive, from the stand-in's log."""
    return [Path(c.split("--save-path ", 1)[1]) for c in log_lines(root) if c.startswith("k0s backup")]


def test_backup_wipe_restore_brings_back_the_same_ca_key_and_etcd_data(bucket, fleet):
    controller = fleet.first_controller()
    ca, db = state(controller)
    with enforced():
        done = fleet.run("etcd-backup.sh", controller, bucket.credentials(), **backup_env(bucket, "cp-1"))
    assert done.returncode == 0, done.stderr
    (key,) = etcd_keys(bucket)
    assert KEY_FORM.fullmatch(key), key
    assert [p for p in save_paths(controller) if p.exists()] == []  # no plain archive left on the host
    # the k0s that took it (what `k0s version` printed there), for the restore's minor check
    assert bucket.aws("s3").head_object(Bucket=bucket.name, Key=key)["Metadata"] == {"k0s-version": VERSION}

    # Unreadable without the identity: the object is an age file, and holds neither secret in clear.
    sealed = bucket.read(key)
    assert sealed.startswith(b"age-encryption.org/v1\n")
    plain = pyrage.decrypt(sealed, [IDENTITY])
    assert plain != sealed and ca not in sealed and db not in sealed
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt(sealed, [pyrage.x25519.Identity.generate()])
    with tarfile.open(fileobj=io.BytesIO(plain)) as archive:  # k0s's layout at v1.36.3+k0s.2
        assert archive.extractfile("etcd-snapshot.db").read() == db
        assert archive.extractfile("pki/ca.key").read() == ca
        assert "k0s.yaml" in archive.getnames()

    # The host is wiped (k0s reset), then rebuilt: the Node layer stages k0s, the restore runs, then
    # the first controller's install starts the restored etcd.
    assert fleet.run("k0s-reset.sh", controller, ROLE="controller").returncode == 0
    assert not (controller / "var/lib/k0s").exists()
    fleet.stage(controller, VERSION)
    restored = restore(fleet, controller, bucket)
    assert restored.returncode == 0, restored.stderr
    assert f"restored etcd and the cluster PKI from {key}" in restored.stderr
    installed = fleet.run("k0s-node.sh", controller, ROLE="controller", K0S_CONFIG_B64=CONFIG, FIRST="true")
    assert installed.returncode == 0, installed.stderr
    assert state(controller) == (ca, db)
    assert fleet.k0s(controller, "status").returncode == 0

    # k0s.restoreFrom still set: the next `pulumi up` changes nothing on the restored host.
    calls = len(log_lines(controller))
    again = restore(fleet, controller, bucket)
    assert again.returncode == 0, again.stderr
    assert "done: unchanged" in again.stderr and f"restored before from {key}" in again.stderr
    assert not [c for c in log_lines(controller)[calls:] if c.startswith(MUTATING)]
    assert state(controller) == (ca, db)
    # A later reset (destroy, or the node leaving) forgets the restore: a rebuilt host restores again.
    assert fleet.run("k0s-reset.sh", controller, ROLE="controller").returncode == 0
    assert not (controller / "var/lib/cluster-bootstrap/k0s-restored-from").exists()


def test_a_named_backup_is_restored_and_a_missing_one_refused(bucket, fleet):
    controller = fleet.first_controller()
    with enforced():
        assert fleet.run("etcd-backup.sh", controller, bucket.credentials(),
                         **backup_env(bucket, "cp-1")).returncode == 0
    (key,) = etcd_keys(bucket)
    fresh = fleet.host("cp-9")
    missing = restore(fleet, fresh, bucket, "etcd/cp-1/20200101T000000Z.tar.gz.age")
    assert missing.returncode != 0
    assert "the backup bucket holds no object etcd/cp-1/20200101T000000Z.tar.gz.age" in missing.stderr
    assert not (fresh / "var/lib/k0s").exists()
    named = restore(fleet, fresh, bucket, key)
    assert named.returncode == 0, named.stderr


def test_a_backup_another_k0s_minor_took_is_refused_and_restored_with_its_own(bucket, fleet):
    """Restoring skips no minor and never goes back: the backup records its k0s, the restore
    refuses another minor and names the way (restore with the backup's, then upgrade)."""
    older = PREVIOUS["k0s"]
    controller = fleet.first_controller(versions=(older,))
    with enforced():
        assert fleet.run("etcd-backup.sh", controller, bucket.credentials(),
                         **backup_env(bucket, "cp-1")).returncode == 0
    (key,) = etcd_keys(bucket)
    fresh = fleet.host("cp-9", versions=(VERSION, older))
    refused = restore(fleet, fresh, bucket)
    assert refused.returncode != 0
    assert f"{key} was taken by k0s {older}, and this stack installs {VERSION}" in refused.stderr
    assert f"set versions.k0s to {older}" in refused.stderr
    assert not (fresh / "var/lib/k0s").exists() and not [c for c in log_lines(fresh) if c.startswith("k0s restore")]
    with enforced():
        same = fleet.run("k0s-restore.sh", fresh, {**bucket.credentials(), "AGE_IDENTITY": str(IDENTITY)},
                         RESTORE_FROM="latest", S3_URL=bucket.env["S3_URL"], S3_REGION="us-east-1", K0S_VERSION=older)
    assert same.returncode == 0, same.stderr


def test_latest_with_an_empty_bucket_is_refused(bucket, fleet):
    fresh = fleet.host("cp-1")
    done = restore(fleet, fresh, bucket)
    assert done.returncode != 0
    assert "k0s.restoreFrom is latest, but the backup bucket holds no etcd backup" in done.stderr
    assert not (fresh / "var/lib/k0s").exists() and not [c for c in log_lines(fresh) if c.startswith("k0s ")]


def test_a_host_that_runs_a_cluster_refuses_the_restore(bucket, fleet):
    controller = fleet.first_controller()
    before = state(controller)
    done = restore(fleet, controller, bucket)
    assert done.returncode != 0 and "this host already runs a k0s cluster" in done.stderr
    assert state(controller) == before


def test_the_standin_restore_refuses_a_running_k0s_and_existing_etcd_data(fleet, tmp_path):
    """k0s restore's own refusals (cmd/restore/restore_unix.go; etcd's snapshot restore)."""
    controller = fleet.first_controller()
    out = tmp_path / "out"
    out.mkdir()
    assert fleet.k0s(controller, "backup", "--save-path", str(out)).returncode == 0
    (archive,) = out.glob("k0s_backup_*.tar.gz")
    running = fleet.k0s(controller, "restore", str(archive))
    assert running.returncode != 0 and "k0s must be down during the restore" in running.stderr
    fleet.k0s(controller, "stop")
    overlapping = fleet.k0s(controller, "restore", str(archive))
    assert overlapping.returncode != 0 and "exists" in overlapping.stderr


def test_only_the_member_whose_name_sorts_first_uploads(bucket, fleet):
    controller = fleet.first_controller()
    second = fleet.join(controller, "cp-2", role="controller")
    with enforced():
        skipped = fleet.run("etcd-backup.sh", second, bucket.credentials(), **backup_env(bucket, "cp-2"))
    assert skipped.returncode == 0, skipped.stderr
    assert "skipped: etcd member cp-1 uploads this run" in skipped.stderr
    assert etcd_keys(bucket) == [] and not save_paths(second)


def test_a_failed_upload_fails_the_run_and_leaves_no_archive(bucket, fleet):
    controller = fleet.first_controller()
    wrong = {**bucket.credentials(), "AWS_SECRET_ACCESS_KEY": "not-the-key"}
    with enforced():
        done = fleet.run("etcd-backup.sh", controller, wrong, **backup_env(bucket, "cp-1"))
    assert done.returncode != 0 and "writing s3 object etcd/cp-1/" in done.stderr
    (saved,) = save_paths(controller)
    assert not saved.exists() and not saved.parent.exists()
    assert etcd_keys(bucket) == []


def test_a_controller_whose_k0s_is_down_fails_the_run(bucket, fleet):
    controller = fleet.first_controller()
    fleet.k0s(controller, "stop")
    with enforced():
        done = fleet.run("etcd-backup.sh", controller, bucket.credentials(), **backup_env(bucket, "cp-1"))
    assert done.returncode != 0 and "cannot list etcd members" in done.stderr
    assert etcd_keys(bucket) == []


def test_the_timer_is_installed_once_and_removed(bucket, fleet):
    rec = run_stack("dev", preview=False)
    script, env = rendered(rec, "gitops-backup-etcd-dev-1")
    env.update(S3_URL=bucket.env["S3_URL"])
    controller = fleet.first_controller()
    _, calls = fleet.twice(script, controller, bucket.credentials(), **env)
    assert [c for c in calls if c.startswith("systemctl")] == [
        "systemctl daemon-reload", "systemctl enable --now cluster-bootstrap-etcd-backup.timer"]
    timer = (controller / "etc/systemd/system/cluster-bootstrap-etcd-backup.timer").read_text()
    assert "OnCalendar=*-*-* 03:00:00 UTC" in timer
    service = (controller / "etc/systemd/system/cluster-bootstrap-etcd-backup.service").read_text()
    assert "Type=oneshot" in service and "ExecStart=/bin/bash /usr/local/lib/cluster-bootstrap/etcd-backup.sh" in service
    program = controller / "usr/local/lib/cluster-bootstrap/etcd-backup.sh"
    assert program.read_text() == remote.program("etcd-backup.sh")
    envfile = controller / "etc/cluster-bootstrap/etcd-backup.env"
    assert oct(envfile.stat().st_mode & 0o777) == "0o600"
    assert f"AWS_SECRET_ACCESS_KEY={bucket.secret}\n" in envfile.read_text()
    assert f"AGE_RECIPIENT={rec.outputs['sopsAgeRecipient']}\n" in envfile.read_text()
    removed = fleet.run(script, controller, None, ACTION="remove")
    assert removed.returncode == 0, removed.stderr
    assert "systemctl disable --now cluster-bootstrap-etcd-backup.timer" in log_lines(controller)
    assert not program.exists() and not envfile.exists()
    assert not list((controller / "etc/systemd/system").glob("cluster-bootstrap-*"))


# Where the program puts these steps.

def restore_config(stack: str = "dev", source: str = "latest") -> dict:
    return {"k0s": {**raw_config(stack).get("k0s", {}), "restoreFrom": source},
            "sops": {"ageKey": str(IDENTITY)}}


def test_restore_runs_on_the_first_controller_before_its_install_only_when_set():
    rec = run_with(stack="prod", preview=False, secret=["sops"], **restore_config("prod"))
    step = rec.named("k0s-cp-1-restore")
    assert step.inputs["connection"]["host"] == "198.51.100.11"
    assert rec.depends_transitively(rec.named("k0s-cp-1").urn, step.urn)
    assert rec.depends_transitively(step.urn, rec.named("node-cp-1-stage-k0s").urn)
    assert step.is_secret("stdin")  # the S3 key and the age identity
    script, env = rendered(rec, "k0s-cp-1-restore")
    assert script == "k0s-restore.sh" and env["RESTORE_FROM"] == "latest"
    assert "AGE-SECRET-KEY" not in step.inputs["create"]
    assert [r.name for r in rec.of_type("command:remote:Command") if r.name.endswith("-restore")
            and r.name.startswith("k0s-")] == ["k0s-cp-1-restore"]
    plain = run_stack("prod", preview=False)
    assert not [r.name for r in plain.of_type("command:remote:Command") if r.name.startswith("k0s-")
                and r.name.endswith("-restore")]


def test_etcd_backup_timers_run_on_every_controller_and_no_worker():
    rec = run_stack("prod", preview=False)
    steps = {r.name: r for r in rec.of_type("command:remote:Command") if r.name.startswith("gitops-backup-etcd-")}
    assert set(steps) == {"gitops-backup-etcd-cp-1", "gitops-backup-etcd-cp-2", "gitops-backup-etcd-cp-3"}
    for name, step in steps.items():
        node = name.removeprefix("gitops-backup-etcd-")
        assert step.inputs["connection"]["host"] == rec.named(f"node-{node}-prepare").inputs["connection"]["host"]
        assert step.is_secret("stdin")
        assert rec.depends_transitively(step.urn, rec.named(f"k0s-{node}").urn)
        script, env = rendered(rec, name)
        assert script == "etcd-backup-timer.sh" and env["NODE_NAME"] == node
        assert env["AGE_RECIPIENT"] == rec.outputs["sopsAgeRecipient"]
        # and all of Gitea (the twin's test_gitea_backup runs this against the chart's Deployment)
        assert (env["GITEA_NAMESPACE"], env["GITEA_SELECTOR"], env["GITEA_CONTAINER"]) == (
            "gitea", "app.kubernetes.io/name=gitea,app.kubernetes.io/instance=gitea", "gitea")
        assert "AWS_SECRET_ACCESS_KEY" not in step.inputs["create"]
        assert base64.b64decode(env["PROGRAM_B64"]).decode() == remote.program("etcd-backup.sh")
        assert "etcd-backup-timer.sh" in step.inputs["delete"]
    off = run_with(preview=False, backup={"enabled": False})
    assert not [r for r in off.of_type("command:remote:Command") if r.name.startswith("gitops-backup-etcd-")]


def problems(raw: dict, secret=frozenset({"sops"})) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        validate(raw, "dev", secret)
    return {p.path: p.message for p in caught.value.problems}


@pytest.mark.parametrize("schedule", ["03:00", "daily", "*-*-* 03:00:00", "Mon..Fri 02:30", "*-*-01 04:00:00"])
def test_etcd_schedules_systemd_takes_are_accepted(schedule):
    validate({**raw_config(), "backup": {"etcdSchedule": schedule}}, "dev", frozenset())


@pytest.mark.parametrize("schedule", ["0 3 * * *", "every day", "*-*-* 25h", ""])
def test_an_etcd_schedule_systemd_would_refuse_is_named(schedule):
    found = problems({**raw_config(), "backup": {"etcdSchedule": schedule}})
    assert "backup.etcdSchedule" in found and "OnCalendar" in found["backup.etcdSchedule"]


def test_restore_from_is_checked():
    raw = raw_config()
    found = problems({**raw, "k0s": {**raw.get("k0s", {}), "restoreFrom": "yesterday"}})
    assert "neither 'latest' nor a backup's key" in found["k0s.restoreFrom"]
    found = problems({**raw, "k0s": {**raw.get("k0s", {}), "restoreFrom": "latest"}})
    assert "needs sops.ageKey" in found["k0s.restoreFrom"]
    found = problems({**raw, **restore_config(), "backup": {"enabled": False}})
    assert "needs backup.enabled: true" in found["k0s.restoreFrom"]
    validate({**raw, **restore_config()}, "dev", frozenset({"sops"}))
