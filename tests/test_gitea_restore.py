"""All of Gitea restored (issue #23): where the program puts the restore step, how its init
container sits in the pinned chart's pod, and what gitea.restoreFrom accepts. The round trip itself,
on the real Gitea, API server and sqlite3, is tests/twin/test_gitea_backup.py."""

from __future__ import annotations

import os
import subprocess

import pytest

from components import gitea
from stacks.config import ConfigError, validate
from tests import charts
from tests.conftest import raw_config, run_stack, run_with
from tests.hostrun import rendered
from tests.pins import VERSIONS

def restore_config(stack: str = "dev", source: str = "latest") -> dict:
    from tests.test_etcd_backup import IDENTITY

    return {"gitea": {**raw_config(stack).get("gitea", {}), "restoreFrom": source}, "sops": {"ageKey": str(IDENTITY)}}


def pod_of(rec) -> dict:
    (server,) = [o for o in charts.render(rec.named("gitea-release")) if o["kind"] == "Deployment"]
    return server


def test_the_restore_init_container_runs_first_on_the_charts_volume_as_giteas_user(up):
    """Before the chart's init containers (init-app-ini keeps an existing app.ini's secret keys,
    configure-gitea migrates and syncs the admin's password after it), on the chart's own volume
    and temp dir, as uid 1000 like the chart's Gitea, from Gitea's root image of the pinned release."""
    server = pod_of(up)
    pod = server["spec"]["template"]["spec"]
    names = [c["name"] for c in pod["initContainers"]]
    assert names[0] == "restore" and names.index("init-directories") == 1
    assert names.index("init-app-ini") < names.index("configure-gitea")
    restore = pod["initContainers"][0]
    assert restore["image"] == f"docker.io/gitea/gitea:{VERSIONS['giteaApp']}"
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in restore["volumeMounts"]}
    assert volumes[mounts[gitea.DATA]]["persistentVolumeClaim"]["claimName"] == "gitea-shared-storage"
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert volumes[mounts["/restore"]]["configMap"]["name"] == gitea.RESTORE_INIT_CONFIG
    security = restore["securityContext"]
    assert (security["runAsUser"], security["runAsNonRoot"], security["readOnlyRootFilesystem"]) == (1000, True, True)
    # The chart's Gitea mounts the same volume at the same place (what the restore step execs into).
    (main,) = [c for c in pod["containers"] if c["name"] == gitea.CONTAINER]
    assert {m["mountPath"]: m["name"] for m in main["volumeMounts"]}[gitea.DATA] == mounts[gitea.DATA]
    assert {e["name"]: e.get("value") for e in main["env"]}["GITEA_WORK_DIR"] == gitea.DATA


def test_the_paths_and_names_the_restore_uses_are_the_charts(up):
    """The restore init container's paths and the restore step's selector, as the chart renders
    them: the volume is APP_DATA_PATH, repositories under repository.ROOT, no database PATH (Gitea's
    default <APP_DATA_PATH>/gitea.db then applies: the twin's real Gitea is read there), and the
    pods carry the selector's labels."""
    server = pod_of(up)
    (inline,) = [o for o in charts.render(up.named("gitea-release"))
                 if o["kind"] == "Secret" and o["metadata"]["name"].endswith("-inline-config")]
    config = {section: dict(line.split("=", 1) for line in body.splitlines() if "=" in line)
              for section, body in inline["stringData"].items()}
    assert config["server"]["APP_DATA_PATH"] == gitea.DATA
    assert config["repository"]["ROOT"] == gitea.REPO_ROOT
    assert "PATH" not in config["database"] and config["database"]["DB_TYPE"] == "sqlite3"
    assert gitea.DB_PATH == f"{gitea.DATA}/gitea.db"
    labels = server["spec"]["template"]["metadata"]["labels"]
    assert dict(pair.split("=") for pair in gitea.SELECTOR.split(",")).items() <= labels.items()
    env = {e["name"]: e["value"] for e in server["spec"]["template"]["spec"]["initContainers"][0]["env"]}
    assert (env["DATA"], env["REPO_ROOT"], env["DB_PATH"]) == (gitea.DATA, gitea.REPO_ROOT, gitea.DB_PATH)


def test_without_backups_the_pod_has_no_restore_init_container():
    off = run_with(preview=False, backup={"enabled": False})
    names = [c["name"] for c in pod_of(off)["spec"]["template"]["spec"]["initContainers"]]
    assert "restore" not in names
    assert not [r for r in off.of_type("kubernetes:core/v1:ConfigMap") if r.name == "gitea-restore-init"]


def test_the_init_container_does_nothing_unless_a_dump_is_staged_and_refuses_a_bad_one(tmp_path):
    script = tmp_path / "gitea-restore-init.sh"
    script.write_text(run_stack("dev", preview=False).named("gitea-restore-init").inputs["data"][script.name])
    data = tmp_path / "data"
    (data / "gitea").mkdir(parents=True)
    (data / "gitea.db").write_text("the fresh Gitea's")
    env = {"PATH": os.environ["PATH"], "DATA": str(data), "REPO_ROOT": str(data / "git/gitea-repositories"),
           "DB_PATH": str(data / "gitea.db"), "TMPDIR": str(tmp_path)}
    done = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout + done.stderr == ""
    assert sorted(p.name for p in data.iterdir()) == ["gitea", "gitea.db"]
    staged = data / ".cluster-bootstrap/restore"
    (staged / "dump").mkdir(parents=True)
    (staged / "ready").write_text("gitea/20261126T030000Z.tar.gz.age\n")
    bad = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True)
    assert bad.returncode != 0
    assert "the staged dump of gitea/20261126T030000Z.tar.gz.age has no gitea-db.sql: not a gitea dump" in bad.stderr
    assert (data / "gitea.db").read_text() == "the fresh Gitea's"  # nothing moved


def test_the_restore_runs_on_the_first_controller_after_the_release_and_before_the_seed_only_when_set():
    rec = run_with(stack="prod", preview=False, secret=["sops"], **restore_config("prod"))
    step = rec.named("gitea-restore")
    assert step.inputs["connection"]["host"] == rec.named("node-cp-1-prepare").inputs["connection"]["host"]
    assert rec.depends_transitively(step.urn, rec.named("gitea-release").urn)
    assert rec.depends_transitively(rec.named("gitea-seed").urn, step.urn)
    assert step.is_secret("stdin")  # the S3 key and the age identity
    script, env = rendered(rec, "gitea-restore")
    assert script == "gitea-restore.sh" and env["RESTORE_FROM"] == "latest"
    assert (env["NAMESPACE"], env["SELECTOR"], env["CONTAINER"], env["DATA"], env["REPO_ROOT"]) == (
        gitea.NAMESPACE, gitea.SELECTOR, gitea.CONTAINER, gitea.DATA, gitea.REPO_ROOT)
    assert "AGE-SECRET-KEY" not in step.inputs["create"] and "AWS_SECRET_ACCESS_KEY" not in step.inputs["create"]
    assert not [r for r in run_stack("prod", preview=False).of_type("command:remote:Command")
                if r.name == "gitea-restore"]


def problems(raw: dict, secret=frozenset({"sops"})) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        validate(raw, "dev", secret)
    found: dict[str, str] = {}
    for problem in caught.value.problems:  # a field's problems joined: all of them are reported
        found[problem.path] = " | ".join(filter(None, [found.get(problem.path), problem.message]))
    return found


def test_gitea_restore_from_is_checked_with_every_problem_at_once():
    raw = raw_config()
    found = problems({**raw, "gitea": {"restoreFrom": "etcd/cp-1/20261126T030000Z.tar.gz.age"}})
    assert "neither 'latest' nor a Gitea backup's key like 'gitea/20261126T030000Z.tar.gz.age'" in found["gitea.restoreFrom"]
    found = problems({**raw, "gitea": {"restoreFrom": "latest"}, "k0s": {"restoreFrom": "latest"},
                      "backup": {"enabled": False}}, frozenset())
    assert "needs backup.enabled: true" in found["gitea.restoreFrom"]
    assert "needs backup.enabled: true" in found["k0s.restoreFrom"]
    found = problems({**raw, "gitea": {"restoreFrom": "latest"}}, frozenset())
    assert "needs sops.ageKey: the Gitea backups are encrypted" in found["gitea.restoreFrom"]
    validate({**raw, **restore_config()}, "dev", frozenset({"sops"}))
    validate({**raw, **restore_config(source="gitea/20261126T030000Z.tar.gz.age")}, "dev", frozenset({"sops"}))
