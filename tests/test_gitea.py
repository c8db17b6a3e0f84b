"""Gitea (stage 5): the minimal release, its credentials, and the seed Job — run for real."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from components import gitea, shell
from stacks.config import GITOPS_DIR
from components.handover import receiver_path
from tests.conftest import in_cluster_objects
from tests.manifests import validate
from tests.pins import VERSIONS

SEED = gitea.SEED_SCRIPT
GITOPS_FILES = sorted(p.relative_to(GITOPS_DIR).as_posix() for p in GITOPS_DIR.rglob("*") if p.is_file())


def test_release_is_minimal_and_pinned(rec):
    release = rec.named("gitea-release")
    assert (release.inputs["chart"], release.inputs["version"]) == ("gitea", VERSIONS["gitea"])
    assert release.inputs["repositoryOpts"] == {"repo": "https://dl.gitea.com/charts/"}
    values = release.inputs["values"]
    assert values["replicaCount"] == 1 and values["persistence"]["enabled"] is True
    for dependency in ("postgresql", "postgresql-ha", "valkey", "valkey-cluster"):
        assert values[dependency] == {"enabled": False}, dependency
    config = values["gitea"]["config"]
    assert config["database"] == {"DB_TYPE": "sqlite3"}
    assert config["cache"] == {"ADAPTER": "memory"} and config["session"] == {"PROVIDER": "memory"}
    assert values["gitea"]["admin"]["existingSecret"] == rec.named("gitea-admin").inputs["metadata"]["name"]
    assert config["webhook"]["ALLOWED_HOST_LIST"] == "webhook-receiver.flux-system.svc.cluster.local"
    assert rec.depends_transitively(release.urn, rec.named("cilium-release").urn)
    for secret in ("gitea-admin", "gitea-ssh-host-key"):
        assert rec.named(secret).urn in release.dependencies


def test_credentials_are_generated_and_secret(rec):
    admin = rec.named("gitea-admin")
    assert admin.is_secret("stringData")
    (password,) = [r for r in rec.of_type("random:index/randomPassword:RandomPassword")
                   if r.name == "gitea-admin-password"]
    assert password.inputs["length"] >= 32
    assert password.urn in admin.property_dependencies["stringData"]
    host_key = rec.named("gitea-ssh-host-key")
    assert host_key.type == "kubernetes:core/v1:Secret" and host_key.is_secret("stringData")
    for key in [r for r in rec.of_type("tls:index/privateKey:PrivateKey") if r.name.startswith("gitea-")]:
        assert key.inputs["algorithm"] == "ED25519" and "privateKeyOpenssh" in key.additional_secret_outputs


def test_every_object_is_valid(up):
    objects = in_cluster_objects(up, "gitea-")
    assert {o.inputs["kind"] for o in objects} == {"Namespace", "Secret", "ConfigMap", "Job"}
    for obj in objects:
        validate(obj.inputs)


def test_seed_job_waits_for_gitea_and_carries_the_content(up):
    job, content = up.named("gitea-seed"), up.named("gitea-seed-content")
    assert up.named("gitea-release").urn in job.dependencies
    assert content.urn in job.property_dependencies["spec"]
    archive = base64.b64decode(content.inputs["binaryData"]["gitops.tar"])
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert sorted(tar.getnames()) == GITOPS_FILES
    program = shell.assemble(SEED)
    assert content.inputs["data"]["gitea-seed.sh"] == program and "s3_get()" in program
    digest = job.inputs["metadata"]["annotations"]["cluster-bootstrap/content-sha256"]
    assert digest == hashlib.sha256(archive + program.encode()).hexdigest()
    assert "ttlSecondsAfterFinished" not in job.inputs["spec"]  # a vanished Job would be drift
    # Its name is generated; the README finds it by this label.
    assert job.inputs["metadata"]["labels"]["app.kubernetes.io/name"] == "gitea-seed"
    assert job.inputs["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "gitea-seed"
    assert "name" not in content.inputs["metadata"]  # auto-named: new content → new ConfigMap → new Job


def test_seed_archive_bytes_depend_only_on_the_content(tmp_path):
    """Two clones at different paths, with other file times, modes and umask, built in two
    processes: the same bytes (so the seed ConfigMap, and the Job, change only with the content)."""
    builds = []
    # the second build runs with another deflate (zlib-ng's output differs from zlib's): same bytes
    for i, (stamp, mode, umask) in enumerate(((946684800, 0o644, 0o022), (2000000000, 0o600, 0o077))):
        copy = tmp_path / f"clone-{i}" / ("deeper/" * i) / "gitops"
        shutil.copytree(GITOPS_DIR, copy)
        for path in copy.rglob("*"):
            if path.is_file():
                path.chmod(mode)
            os.utime(path, (stamp, stamp))
        code = (f"import os, sys, zlib; os.umask({umask}); from pathlib import Path; "
                + ("c, o = zlib.compress, zlib.compressobj; zlib.compress = lambda d, level=-1, wbits=15: "
                   "c(d, 1, wbits); zlib.compressobj = lambda level=-1, *a, **k: o(1, *a, **k); " if i else "")
                + "from components.gitea import "
                f"gitops_archive; sys.stdout.buffer.write(gitops_archive(Path({str(copy)!r})))")
        builds.append(subprocess.run([sys.executable, "-c", code], cwd=GITOPS_DIR.parent,
                                     capture_output=True, check=True).stdout)
    assert builds[0] == builds[1]
    with tarfile.open(fileobj=io.BytesIO(builds[0])) as tar:
        members = tar.getmembers()
    assert sorted(m.name for m in members) == GITOPS_FILES
    assert {(m.mode, m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0o644, 0, 0, 0, "", "")}


VECTORS = json.loads((Path(__file__).parent / "vectors" / "flux-webhook-path.json").read_text())["vectors"]
ORACLE = Path(__file__).resolve().parent.parent / "venv" / "tools" / "bin" / "flux-webhook-path"


def test_receiver_path_matches_vectors_from_fluxs_own_code():
    for vector in VECTORS:
        assert receiver_path(vector["token"], vector["name"], vector["namespace"]) == vector["path"], vector


def test_webhook_targets_the_path_fluxs_own_code_serves_the_receiver_on(up):
    if not ORACLE.exists():
        pytest.skip(f"{ORACLE} is missing (built by `make test` when Go is installed)")
    token = up.named("flux-webhook-token").inputs["stringData"]["token"]
    receiver = up.named("flux-receiver").inputs["metadata"]
    served = subprocess.run([str(ORACLE), token, receiver["name"], receiver["namespace"]],
                            capture_output=True, text=True, check=True).stdout
    webhook = up.named("gitea-seed-webhook")
    assert webhook.is_secret("stringData")
    assert webhook.inputs["stringData"] == {
        "url": f"http://webhook-receiver.{receiver['namespace']}.svc.cluster.local{served}", "secret": token}


def test_git_repository_url_output(rec):
    org, repo = "platform", "gitops"
    assert rec.outputs["gitRepositoryUrl"] == f"ssh://git@gitea-ssh.gitea.svc.cluster.local:2222/{org}/{repo}.git"


def seed_program(tmp_path: Path) -> Path:
    """The seed Job's program as its ConfigMap carries it: the helpers it uses, then the script."""
    path = tmp_path / "gitea-seed.sh"
    path.write_text(shell.assemble(SEED))
    return path


def test_seed_script_passes_shellcheck(tmp_path):
    shellcheck = Path(sys.executable).parent / "shellcheck"
    done = subprocess.run([str(shellcheck), "-s", "sh", str(seed_program(tmp_path))], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_builds_from_its_args_alone(tmp_path):
    from components.gitea import Gitea, GiteaArgs
    from tests import standalone

    seed = tmp_path / "seed"
    (seed / "apps").mkdir(parents=True)
    (seed / "apps" / "kustomization.yaml").write_text("resources: []\n")

    def program():
        Gitea("git", GiteaArgs(chart_version=VERSIONS["gitea"], app_version=VERSIONS["giteaApp"], domain="lab.example.net", org="infra",
                               repo="fleet", storage_class="fast", sops_config="creation_rules: []\n", seed_dir=seed,
                               cluster=standalone.cluster(), after=[standalone.marker()]))

    rec = standalone.build(program)
    values = rec.named("git-release").inputs["values"]
    assert values["persistence"]["storageClass"] == "fast"
    assert values["gitea"]["config"]["server"]["ROOT_URL"] == "https://git.lab.example.net/"
    assert rec.outputs == {} and rec.named("git-seed").type == "kubernetes:batch/v1:Job"
    archive = base64.b64decode(rec.named("git-seed-content").inputs["binaryData"]["gitops.tar"])
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert tar.getnames() == ["apps/kustomization.yaml"]


def test_gitea_and_the_seed_job_run_the_pinned_app(up):
    """The server runs versions.giteaApp (the chart's image, as it renders) and the seed Job's
    tools are the same Gitea release."""
    from tests import charts

    release = up.named("gitea-release")
    (server,) = [o for o in charts.render(release) if o["kind"] == "Deployment"]
    images = {c["image"] for c in server["spec"]["template"]["spec"]["containers"]}
    assert images == {f"docker.gitea.com/gitea:{VERSIONS['giteaApp']}-rootless"}
    container = up.named("gitea-seed").inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"docker.io/gitea/gitea:{VERSIONS['giteaApp']}-rootless"
