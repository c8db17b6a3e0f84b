"""All of Gitea off-cluster and back (issue #23), on real parts: a real Gitea holding a second
user with an SSH key, that user's repository with a commit and an issue, and the seeded GitOps
repository; the controllers' backup program (components/scripts/etcd-backup.sh) over the real sshd,
its `k0s kubectl` a real kubectl against the twin's API server where the pinned chart's Deployment
runs with the program's values (kwok playing the kubelet); `gitea dump` run by the real Gitea; age
files; moto's S3 with the program's IAM policy enforced. Then a rebuilt cluster's new, empty Gitea
is restored by the program's `gitea.restoreFrom` step (gitea-restore.sh) and its restore init
container (gitea-restore-init.sh, with the real sqlite3), and the real Gitea serves it all again.

What cannot run here: containers. `kubectl exec` into Gitea's pod goes to tests/twin/kubelet.py,
which runs the command against the twin's Gitea and, for a pod it has not seen, first the pod's
init containers (see there)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
import time
from pathlib import Path

import pyrage
import pytest

from components.gitea import DATA
from tests import charts
from tests.conftest import raw_config
from tests.hostrun import KUBECTL, log_lines, rendered, rendered_env
from tests.test_backup import Bucket, enforced
from tests.twin import gitea, jobs, kubelet, names
from tests.twin.apply import Applier
from tests.twin.recording import record

IDENTITY = pyrage.x25519.Identity.generate()  # the stack's sops.ageKey
KEY_FORM = re.compile(r"gitea/[0-9]{8}T[0-9]{6}Z\.tar\.gz\.age")
OLD_PASSWORD = "the-lost-stacks-admin-password"  # the admin's password in the backed-up Gitea


@pytest.fixture
def rec(gitea_built):
    raw = raw_config("dev")
    return record("dev", secret=["sops"], gitea={**raw.get("gitea", {}), "restoreFrom": "latest"},
                  sops={"ageKey": str(IDENTITY)})


@pytest.fixture
def bucket(aws, rec):
    return Bucket(aws, rec)


@pytest.fixture
def pods():
    """Where the kubelet stand-in's Gitea directories go: a directory the chart's user can reach
    (pytest's own are root's alone)."""
    import shutil
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="twin-gitea-"))
    directory.chmod(0o755)
    gitea.pod_build(directory / "build")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def cluster(fresh_twin, rec):
    """The twin with what Gitea's release needs and the release itself installed (helm, the pinned
    chart, the program's values): its pod runs."""
    twin = fresh_twin(rec)
    Applier(twin, rec).run(only_for="gitea-release")
    return twin


def running_pod(twin, old: str = "") -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pods = json.loads(twin.kubectl("-n", "gitea", "get", "pods", "-l", "app.kubernetes.io/name=gitea",
                                       "-o", "json").stdout)["items"]
        ready = [p["metadata"]["name"] for p in pods if p["status"].get("phase") == "Running"
                 and not p["metadata"].get("deletionTimestamp") and p["metadata"]["name"] != old]
        if ready:
            return ready[0]
        time.sleep(1)
    raise AssertionError("no running Gitea pod on the twin")


def pod_state(rec, root: Path, admin: tuple[str, str, str]) -> dict:
    """The kubelet stand-in's state for a Gitea at `root`: its restore init container as the
    release's values and ConfigMap declare it, paths in the pod moved under `root`."""
    (init,) = rec.named("gitea-release").inputs["values"]["preExtraInitContainers"]
    mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}
    config = jobs.by_name(rec, "ConfigMap", "gitea-restore-init")
    script_dir = root / "restore-init"
    script_dir.mkdir(parents=True)
    for key, text in config.inputs["data"].items():
        (script_dir / key).write_text(text)
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    assert mounts[DATA] == "data" and mounts["/tmp"] == "temp"  # the chart's volume names (test_gitea pins them)

    def moved(word: str) -> str:
        for mount, name in mounts.items():
            if word == mount or word.startswith(mount + "/"):
                into = {"data": root / "data", "temp": root / "tmp"}.get(name, script_dir)
                return str(into) + word[len(mount):]
        return word

    env = {"PATH": "/usr/bin:/bin", **{e["name"]: moved(e["value"]) for e in init["env"]}}
    address = names.loopback()
    gitea.prepare(rec, root, address, build=root.parent / "build")
    return {"root": str(root), "build": str(root.parent / "build"), "address": address, "admin": list(admin),
            "init": {"command": [moved(w) for w in init["command"]], "env": env}, "pod": None, "pid": None}


def start(state_file: Path, state: dict, pod: str) -> None:
    state_file.write_text(json.dumps(state))
    kubelet.start_pod(state_file, state, pod)


def api(address: str, method: str, path: str, auth: tuple[str, str], body=None):
    import base64
    import urllib.request

    request = urllib.request.Request(
        f"http://{address}:3000/api/v1{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json",
                 "Authorization": "Basic " + base64.b64encode(":".join(auth).encode()).decode()})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def fill(address: str, admin: tuple[str, str], work: Path) -> dict:
    """What people did with Gitea: a user with an SSH key, their repository with a commit and an issue."""
    api(address, "POST", "/admin/users", admin, {"username": "alice", "email": "alice@dev.k8s.example.org",
                                                 "password": "alice-password-1", "must_change_password": False})
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", str(work / "alice")], check=True)
    public = (work / "alice.pub").read_text().strip()
    api(address, "POST", "/admin/users/alice/keys", admin, {"title": "laptop", "key": public})
    api(address, "POST", "/admin/users/alice/repos", admin, {"name": "notes", "private": True, "auto_init": False})
    repo = work / "notes"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "README.md").write_text("alice's notes\n")
    git = ["git", "-C", str(repo), "-c", "user.name=alice", "-c", "user.email=alice@dev.k8s.example.org"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first note"], check=True)
    subprocess.run([*git, "push", "-q", f"http://alice:alice-password-1@{address}:3000/alice/notes.git", "main"],
                   check=True, capture_output=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    issue = api(address, "POST", "/repos/alice/notes/issues", ("alice", "alice-password-1"),
                {"title": "back up everything", "body": "not only the GitOps repository"})
    return {"key": public, "head": head, "issue": issue["number"]}


def test_gitea_backed_up_whole_then_restored_into_a_rebuilt_clusters_new_gitea(rec, bucket, cluster, fleet, pods,
                                                                                tmp_path):
    twin = cluster
    controller = fleet.first_controller()
    user, password, email = gitea.admin_account(rec)
    fake = {"FAKE_KUBECONFIG": str(twin.kubeconfig), "FAKE_KUBECTL": str(KUBECTL), "FAKE_EXEC": kubelet.__file__}

    # Before: the cluster's Gitea (its admin password that stack's own), seeded, and used.
    first_pod = running_pod(twin)
    before_state = tmp_path / "gitea-a.json"
    before = pod_state(rec, pods / "gitea-a", (user, OLD_PASSWORD, email))
    start(before_state, before, first_pod)
    before = json.loads(before_state.read_text())
    try:
        resolving = names.resolving({gitea.HTTP_HOST: before["address"], gitea.SSH_HOST: before["address"]},
                                    tmp_path / "names-a")
        seeded = jobs.seed(rec, tmp_path / "seed-a", resolving, bucket, GITEA_PASSWORD=OLD_PASSWORD,
                           **bucket.credentials())
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        made = fill(before["address"], (user, OLD_PASSWORD), tmp_path)

        # The controllers' timer: etcd, then all of Gitea, under one time stamp.
        timer = rendered_env(rec, "gitops-backup-etcd-dev-1")
        env = {k: timer[k] for k in ("AGE_RECIPIENT", "GITEA_NAMESPACE", "GITEA_SELECTOR", "GITEA_CONTAINER",
                                     "S3_REGION")}
        with enforced():
            done = fleet.run("etcd-backup.sh", controller, bucket.credentials(), timeout=300, NODE_NAME="cp-1",
                             S3_URL=bucket.env["S3_URL"], FAKE_EXEC_STATE=str(before_state), **env, **fake)
        assert done.returncode == 0, done.stderr
    finally:
        kubelet.stop(json.loads(before_state.read_text()))
    keys = [o["Key"] for o in bucket.aws("s3").list_objects_v2(Bucket=bucket.name)["Contents"]]
    (dump_key,) = [k for k in keys if k.startswith("gitea/")]
    (etcd_key,) = [k for k in keys if k.startswith("etcd/")]
    assert KEY_FORM.fullmatch(dump_key) and dump_key.split("/")[-1] == etcd_key.split("/")[-1]
    # the Gitea that dumped it, for the restore's version check
    assert bucket.aws("s3").head_object(Bucket=bucket.name, Key=dump_key)["Metadata"] == {
        "gitea-version": gitea.version()}
    assert f"uploaded {dump_key}" in done.stderr

    # Sealed to the stack's age recipient: nothing readable without its identity.
    sealed = bucket.read(dump_key)
    assert sealed.startswith(b"age-encryption.org/v1\n")
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt(sealed, [pyrage.x25519.Identity.generate()])
    plain = pyrage.decrypt(sealed, [IDENTITY])
    assert b"alice's notes" not in sealed and made["key"].encode() not in sealed
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r:gz") as archive:  # Gitea's dump layout
        names_in = archive.getnames()
    assert "gitea-db.sql" in names_in and "app.ini" in names_in
    assert any(n.startswith("repos/alice/notes.git/") for n in names_in)
    assert any(n.startswith("repos/platform/gitops.git/") for n in names_in)

    # Every host lost. The rebuilt cluster's Gitea is new and empty (its pod is another).
    twin.kubectl("-n", "gitea", "delete", "pod", first_pod, "--wait=true")
    new_pod = running_pod(twin, old=first_pod)
    after_state = tmp_path / "gitea-b.json"
    start(after_state, pod_state(rec, pods / "gitea-b", (user, password, email)), new_pod)
    try:
        after = json.loads(after_state.read_text())
        listed = gitea.cli(pods / "build" / "gitea", pods / "gitea-b", "admin", "user", "list", pod_user=True)
        assert listed.stdout.count("\n") == 2, listed.stdout + listed.stderr  # header and the admin: nothing else
        script, restore_env = rendered(rec, "gitea-restore")
        secrets = {**bucket.credentials(), "AGE_IDENTITY": str(IDENTITY)}

        def restore(**changes):
            with enforced():
                return fleet.run(script, controller, secrets, timeout=300,
                                 **{**restore_env, "S3_URL": bucket.env["S3_URL"], **changes},
                                 FAKE_EXEC_STATE=str(after_state), **fake)

        missing = restore(RESTORE_FROM="gitea/20200101T000000Z.tar.gz.age")
        assert missing.returncode != 0 and "the backup bucket holds no object gitea/20200101T000000Z" in missing.stderr

        # A dump a newer Gitea made is refused before anything is staged.
        newer = "gitea/20261127T030000Z.tar.gz.age"
        bucket.aws("s3").copy_object(Bucket=bucket.name, Key=newer, CopySource={"Bucket": bucket.name, "Key": dump_key},
                                     Metadata={"gitea-version": "99.0.0"}, MetadataDirective="REPLACE")
        refused_newer = restore(RESTORE_FROM=newer)
        assert refused_newer.returncode != 0
        assert f"{newer} was dumped by Gitea 99.0.0, newer than this stack's Gitea {gitea.version()}" in \
            refused_newer.stderr
        assert not (pods / "gitea-b" / "data" / ".cluster-bootstrap").exists()
        bucket.aws("s3").delete_object(Bucket=bucket.name, Key=newer)

        restored = restore()
        assert restored.returncode == 0, restored.stderr
        assert f"restored Gitea from {dump_key}" in restored.stderr
        after = json.loads(after_state.read_text())
        assert after["pod"] not in (first_pod, new_pod)  # the program recreated the pod: its init containers ran
        assert f"restored Gitea from {dump_key}" in (pods / "gitea-b" / "restore-init.log").read_text()

        # The real Gitea serves it all, to the admin of this stack (its password synced by the chart).
        admin = (user, password)
        address = after["address"]
        assert api(address, "GET", "/users/alice", admin)["email"] == "alice@dev.k8s.example.org"
        (key,) = api(address, "GET", "/users/alice/keys", admin)
        assert key["key"].split()[:2] == made["key"].split()[:2] and key["title"] == "laptop"
        branch = api(address, "GET", "/repos/alice/notes/branches/main", admin)
        assert branch["commit"]["id"] == made["head"]
        assert api(address, "GET", f"/repos/alice/notes/issues/{made['issue']}", admin)["title"] == "back up everything"
        assert api(address, "GET", "/repos/platform/gitops", admin)["private"] is True
        clone = subprocess.run(["git", "clone", "-q", f"http://alice:alice-password-1@{address}:3000/alice/notes.git",
                                str(tmp_path / "clone")], capture_output=True, text=True)
        assert clone.returncode == 0, clone.stderr
        assert (tmp_path / "clone" / "README.md").read_text() == "alice's notes\n"
        volume = pods / "gitea-b" / "data"
        assert (volume / ".cluster-bootstrap" / "restored-from").read_text().strip() == dump_key
        assert sorted(p.name for p in (volume / ".cluster-bootstrap").iterdir()) == ["restored-from"]

        # The seed Job (which runs next) finds the repository's history and pushes nothing.
        resolving = names.resolving({gitea.HTTP_HOST: address, gitea.SSH_HOST: address}, tmp_path / "names-b")
        seeded = jobs.seed(rec, tmp_path / "seed-b", resolving, bucket, **bucket.credentials())
        assert seeded.returncode == 0 and "repository has history: left as it is" in seeded.stdout, seeded.stdout

        # gitea.restoreFrom still set: the next `pulumi up` changes nothing.
        calls = len(log_lines(controller))
        again = restore()
        assert again.returncode == 0, again.stderr
        assert f"Gitea was restored from {dump_key}: nothing to do" in again.stderr and "done: unchanged" in again.stderr
        assert not [c for c in log_lines(controller)[calls:] if c.startswith("k0s kubectl -n gitea delete")]

        # A Gitea that holds repositories and was not restored is never restored over.
        (volume / ".cluster-bootstrap" / "restored-from").unlink()
        refused = restore()
        assert refused.returncode != 0 and "already holds repositories" in refused.stderr
        assert api(address, "GET", "/repos/alice/notes/branches/main", admin)["commit"]["id"] == made["head"]
    finally:
        kubelet.stop(json.loads(after_state.read_text()))


def test_the_timer_backs_up_etcd_alone_before_gitea_exists_and_fails_when_gitea_is_down(rec, bucket, fresh_twin,
                                                                                         fleet):
    """Before the GitOps stage (no Gitea Deployment) a run backs up etcd and says why not Gitea;
    with Gitea's Deployment there but no pod of it running, the run (the timer's unit) fails."""
    twin = fresh_twin(rec)
    controller = fleet.first_controller()
    timer = rendered_env(rec, "gitops-backup-etcd-dev-1")
    env = {k: timer[k] for k in ("AGE_RECIPIENT", "GITEA_NAMESPACE", "GITEA_SELECTOR", "GITEA_CONTAINER", "S3_REGION")}
    fake = {"FAKE_KUBECONFIG": str(twin.kubeconfig), "FAKE_KUBECTL": str(KUBECTL)}

    def run():
        with enforced():
            return fleet.run("etcd-backup.sh", controller, bucket.credentials(), NODE_NAME="cp-1",
                             S3_URL=bucket.env["S3_URL"], **env, **fake)

    early = run()
    assert early.returncode == 0, early.stderr
    assert "no Gitea in namespace gitea yet: only etcd backed up" in early.stderr
    keys = [o["Key"] for o in bucket.aws("s3").list_objects_v2(Bucket=bucket.name)["Contents"]]
    assert [k.split("/")[0] for k in keys] == ["etcd"]

    # The chart's Deployment (its labels as rendered for the program's values), with no pod running.
    (deployment,) = [o for o in charts.render(rec.named("gitea-release")) if o["kind"] == "Deployment"]
    deployment["spec"]["replicas"] = 0
    twin.kubectl("create", "namespace", "gitea")
    twin.kubectl("-n", "gitea", "apply", "-f", "-", input=json.dumps(deployment))
    down = run()
    assert down.returncode != 0
    assert "Gitea is installed but no pod of it runs in gitea: Gitea not backed up" in down.stderr
    # and gitea.restoreFrom, then, has nothing to restore into
    script, restore_env = rendered(rec, "gitea-restore")
    with enforced():
        nowhere = fleet.run(script, controller, {**bucket.credentials(), "AGE_IDENTITY": str(IDENTITY)},
                            **{**restore_env, "S3_URL": bucket.env["S3_URL"]}, **fake)
    assert nowhere.returncode != 0
    assert "no running Gitea pod in namespace gitea (app.kubernetes.io/name=gitea," in nowhere.stderr
