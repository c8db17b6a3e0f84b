"""The GitOps handover for real: Flux's own source-controller and kustomize-controller, run against
the twin's API server, clone the repository the seed Job put into a real Gitea — over SSH, with the
program's deploy key and known_hosts — and apply `flux.path` with the program's root Kustomization,
decrypting a SOPS Secret a user added with the program's `sops-age` identity. The program's own
first-sync wait then returns. And each way the handover can break fails with the component's own
message. Not proven here: no pod runs (the applied objects are only stored); Flux's
notification-controller is not built, so the Receiver path stays proven by its oracle
(tests/test_gitea.py)."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from stacks.config import GITOPS_DIR
from tests import charts, crds
from tests.pins import VERSIONS
from tests.twin import cluster, controlplane, flux, gitea, jobs
from tests.twin.recording import record

SOPS = Path(sys.executable).parent / "sops"
FLUX_NS = "flux-system"
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "team-token", "namespace": "default"},
          "type": "Opaque", "stringData": {"token": "s3cr3t-from-git"}}


def manifest(reg) -> dict:
    """The object as the program registers it (a copy: tests change it, never the recording)."""
    return copy.deepcopy({k: v for k, v in reg.inputs.items() if k != "__defaults"})


def apply(twin, *objects: dict) -> None:
    twin.kubectl("apply", "--server-side", "--field-manager=pulumi", "--force-conflicts", "-f", "-",
                 input=yaml.safe_dump_all(objects))


def wait_condition(twin, kind: str, namespace: str, name: str, status: str, timeout: float = 180) -> dict:
    """The object once its Ready condition has `status` (True/False); fails with its message."""
    deadline, obj = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        found = twin.kubectl("-n", namespace, "get", kind, name, "-o", "json", check=False)
        if found.returncode == 0:
            obj = json.loads(found.stdout)
            ready = [c for c in obj.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
            # (the condition's observedGeneration: Flux leaves status.observedGeneration at -1 until
            # a reconcile succeeds)
            if ready and ready[0]["status"] == status and ready[0].get("observedGeneration") == \
                    obj["metadata"]["generation"]:
                return obj
        time.sleep(1)
    raise AssertionError(f"{kind} {namespace}/{name} not Ready={status} in {timeout}s: {obj.get('status')}")


def user_adds_an_encrypted_secret(running, env: dict, work: Path) -> str:
    """What a user does: clone, write a Secret, `sops -e` it with the repository's .sops.yaml, list
    it in the cluster path's kustomization, push. Returns the new head."""
    user, password = running.admin
    url = f"http://{user}:{password}@{running.address}:3000/{env['ORG']}/{env['REPO']}.git"
    git = ["git", "-C", str(work), "-c", "user.name=dev", "-c", "user.email=dev@example.org"]
    subprocess.run(["git", "clone", "-q", url, str(work)], check=True, capture_output=True)
    path = work / "clusters" / "dev" / "team-token.sops.yaml"
    path.write_text(yaml.safe_dump(SECRET))
    subprocess.run([str(SOPS), "--encrypt", "--in-place", str(path)], cwd=work, check=True, capture_output=True)
    assert "s3cr3t-from-git" not in path.read_text()
    kustomization = work / "clusters" / "dev" / "kustomization.yaml"
    config = yaml.safe_load(kustomization.read_text())
    config.setdefault("resources", []).append("team-token.sops.yaml")
    kustomization.write_text(yaml.safe_dump(config, sort_keys=False))
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "team token"], check=True)
    subprocess.run([*git, "push", "-q", "origin", "main"], check=True, capture_output=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Gitea seeded by the seed Job, with a user's encrypted Secret pushed; the twin with Flux's CRDs
    and the program's Flux objects applied; Flux's controllers running; the first sync done."""
    try:
        controlplane.binaries()
        gitea.binary()
        flux.require()
    except (controlplane.Missing, gitea.Missing, flux.Missing) as missing:
        pytest.skip(f"twin: {missing}")
    from tests.conftest import moto_server
    from tests.test_backup import Bucket

    rec = record("dev")
    root = tmp_path_factory.mktemp("flux")
    with contextlib.ExitStack() as stack:
        bucket = Bucket(stack.enter_context(moto_server()), rec)
        server = stack.enter_context(gitea.running(rec, root / "gitea"))
        seeded = jobs.seed(rec, root / "seed", server.resolving, bucket, **bucket.credentials())
        assert seeded.returncode == 0, seeded.stderr
        env = jobs.environment(rec, rec.named("gitea-seed"))
        head = user_adds_an_encrypted_secret(server, env, root / "work")
        twin = stack.enter_context(cluster.running(root / "twin", rec))
        # what the Flux Operator installs from its FluxInstance: the pinned Flux's CRDs; and the
        # CRDs of what the repository holds (cert-manager's, from its pinned chart)
        toolkit = crds.toolkit_crds(VERSIONS["flux"])
        twin.kubectl("apply", "--server-side", "-f", str(toolkit))
        manager = [o for o in charts.render(rec.named("cert-manager-release")) if o["kind"] == "CustomResourceDefinition"]
        apply(twin, *manager)
        for crd in ("gitrepositories.source.toolkit.fluxcd.io", "kustomizations.kustomize.toolkit.fluxcd.io",
                    "certificates.cert-manager.io"):
            twin.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
        apply(twin, *(manifest(r) for r in rec.of_type("kubernetes:core/v1:Namespace")))
        apply(twin, manifest(rec.named("sops-secret")), manifest(rec.named("flux-gitea-credentials")),
              manifest(rec.named("flux-git-repository")), manifest(rec.named("flux-kustomization")))
        logs = stack.enter_context(flux.running(twin, root / "flux", {gitea.SSH_HOST: server.address,
                                                                      gitea.HTTP_HOST: server.address}))
        print(f"twin: Gitea {server.version}; Flux {VERSIONS['flux']} controllers built at "
              + ", ".join(f"{n} v{b} (ships v{s})" for n, (s, b) in flux.versions().items()))
        yield {"rec": rec, "twin": twin, "gitea": server, "head": head, "logs": logs, "env": env}


def case(world, name: str, *, credentials=None, age=None, path=None) -> None:
    """The program's Flux objects again, in namespace `name`, with one thing changed."""
    rec, twin = world["rec"], world["twin"]
    objects = [manifest(rec.named(n)) for n in ("flux-gitea-credentials", "sops-secret", "flux-git-repository",
                                                 "flux-kustomization")]
    for obj in objects:
        obj["metadata"]["namespace"] = name
        obj["metadata"].pop("annotations", None)
    if credentials:
        objects[0]["stringData"].update(credentials)
    if age:
        objects[1]["stringData"] = {next(iter(objects[1]["stringData"])): age}
    if path:
        objects[3]["spec"]["path"] = path
    apply(twin, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, *objects)


def message(obj: dict) -> str:
    """The Ready condition's message (printed: the component's own words, for the record)."""
    text = next(c["message"] for c in obj["status"]["conditions"] if c["type"] == "Ready")
    print(f"twin: {obj['kind']} {obj['metadata']['namespace']}: {text}")
    return text


def test_flux_clones_over_ssh_and_applies_the_cluster_path_with_sops(world):
    twin, logs = world["twin"], world["logs"]
    try:
        repo = wait_condition(twin, "gitrepository", FLUX_NS, "flux-system", "True")
        kustomization = wait_condition(twin, "kustomization", FLUX_NS, "flux-system", "True")
    except AssertionError:
        print("\n".join(p.read_text()[-4000:] for p in logs.values()))
        raise
    assert repo["status"]["artifact"]["revision"] == f"main@sha1:{world['head']}"
    assert kustomization["status"]["lastAppliedRevision"] == f"main@sha1:{world['head']}"
    # the user's Secret, decrypted with the program's age identity
    token = twin.get("-n", "default", "secret", "team-token")
    assert base64.b64decode(token["data"]["token"]).decode() == SECRET["stringData"]["token"]
    # what gitops/clusters/dev holds, with the program's substitutions
    ingress = twin.get("-n", "gitea", "ingress", "gitea")
    substitute = world["rec"].named("flux-kustomization").inputs["spec"]["postBuild"]["substitute"]
    assert "${" not in json.dumps(ingress["spec"])
    assert any(value in json.dumps(ingress["spec"]) for value in substitute.values()), (substitute, ingress["spec"])


def test_the_programs_first_sync_wait_returns_against_the_real_kustomization(world, fleet):
    """k8s-wait.sh as the program renders its `flux-synced` step, over the real sshd, where the k0s
    stand-in's `kubectl` is a real kubectl against the twin."""
    from tests.hostrun import KUBECTL, rendered

    wait_condition(world["twin"], "kustomization", FLUX_NS, "flux-system", "True")
    controller = fleet.first_controller()
    script, env = rendered(world["rec"], "flux-synced")
    done = fleet.run(script, controller, FAKE_KUBECONFIG=str(world["twin"].kubeconfig), FAKE_KUBECTL=str(KUBECTL),
                     WAIT_SECONDS="60", **env)
    assert done.returncode == 0, done.stderr
    assert f"kustomization {FLUX_NS}/flux-system ready" in done.stderr


def other_key(tmp_path: Path) -> tuple[str, str]:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    return (tmp_path / "k").read_text(), (tmp_path / "k.pub").read_text()


def test_a_known_hosts_entry_for_another_key_is_refused(world, tmp_path):
    _, public = other_key(tmp_path)
    host = f"[{gitea.SSH_HOST}]:2222"
    case(world, "case-host-key", credentials={"known_hosts": f"{host} {' '.join(public.split()[:2])}\n"})
    failed = wait_condition(world["twin"], "gitrepository", "case-host-key", "flux-system", "False")
    assert "key mismatch" in message(failed) or "knownhosts" in message(failed), message(failed)


def test_a_deploy_key_gitea_does_not_know_is_refused(world, tmp_path):
    private, public = other_key(tmp_path)
    case(world, "case-deploy-key", credentials={"identity": private, "identity.pub": public})
    failed = wait_condition(world["twin"], "gitrepository", "case-deploy-key", "flux-system", "False")
    assert "unable to authenticate" in message(failed), message(failed)


def test_an_age_identity_the_repository_was_not_encrypted_to_cannot_decrypt(world):
    from pyrage import x25519

    case(world, "case-age", age=str(x25519.Identity.generate()) + "\n")
    wait_condition(world["twin"], "gitrepository", "case-age", "flux-system", "True")
    failed = wait_condition(world["twin"], "kustomization", "case-age", "flux-system", "False")
    assert "decrypt" in message(failed).lower(), message(failed)


def test_a_flux_path_the_seed_content_lacks_is_refused(world):
    # a cluster directory gitops/ does not hold (a user's `make stack` may have added any name)
    absent = next(f"missing-{i}" for i in range(100) if not (GITOPS_DIR / "clusters" / f"missing-{i}").exists())
    case(world, "case-path", path=f"./clusters/{absent}")
    wait_condition(world["twin"], "gitrepository", "case-path", "flux-system", "True")
    failed = wait_condition(world["twin"], "kustomization", "case-path", "flux-system", "False")
    assert "path not found" in message(failed) or "no such file" in message(failed), message(failed)


def test_giteas_webhook_signs_with_the_receivers_token(world):
    """Gitea signs pushes with the secret it stored for the webhook; the Receiver checks them with
    its token Secret: they must be the same (read from Gitea's own database)."""
    rec, server = world["rec"], world["gitea"]
    (stored,) = server.sql("select secret, url from webhook")
    token = rec.named("flux-webhook-token").inputs["stringData"]["token"]
    assert stored == (token, world["env"]["WEBHOOK_URL"])
