"""Flux (stage 5): pinned controllers, and a sync that waits for the seeded repo and the age secret."""

from __future__ import annotations

import subprocess

from tests.conftest import first_controller, in_cluster_objects
from tests.manifests import validate
from tests.pins import VERSIONS


def test_every_object_is_valid(up):
    kinds = set()
    for obj in in_cluster_objects(up, "flux-"):
        kinds.add(obj.inputs["kind"])
        validate(obj.inputs)
    assert kinds == {"FluxInstance", "GitRepository", "Kustomization", "Receiver", "Secret"}


def test_controllers_come_from_the_pinned_operator_and_distribution(rec):
    operator = rec.named("flux-operator")
    assert operator.inputs["chart"] == "oci://ghcr.io/controlplaneio-fluxcd/charts/flux-operator"
    assert operator.inputs["version"] == VERSIONS["fluxOperator"]
    assert rec.depends_transitively(operator.urn, rec.named("cilium-release").urn)
    assert rec.named("sops-namespace").urn in operator.dependencies  # the namespace SopsAgeSecret owns
    instance = rec.named("flux-instance").inputs
    assert instance["metadata"]["name"] == "flux" and instance["metadata"]["namespace"] == "flux-system"
    assert instance["spec"]["distribution"] == {"version": VERSIONS["flux"], "registry": "ghcr.io/fluxcd"}
    assert {"source-controller", "kustomize-controller", "notification-controller"} <= set(instance["spec"]["components"])
    assert instance["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"


def test_up_ends_only_when_flux_has_applied_the_first_sync(rec):
    """The root Kustomization is awaited on a controller; the wait quotes Flux's message if it fails."""
    synced = rec.named("flux-synced")
    assert rec.named("flux-kustomization").urn in synced.dependencies
    assert "READY=kustomization/flux-system/flux-system" in synced.inputs["create"]
    assert "CB_SCRIPT=k8s-wait.sh" in synced.inputs["create"]


def test_sync_waits_for_the_seeded_repo_and_the_age_secret(rec):
    """The graph proves the handover order: seed Job → GitRepository → Kustomization (+ sops-age)."""
    seed, age_secret = rec.named("gitea-seed"), rec.named("sops-secret")
    repository, kustomization = rec.named("flux-git-repository"), rec.named("flux-kustomization")
    assert seed.urn in repository.dependencies
    assert rec.named("flux-instance").urn in repository.dependencies
    assert repository.urn in kustomization.dependencies and age_secret.urn in kustomization.dependencies
    assert rec.depends_transitively(kustomization.urn, seed.urn)
    assert rec.depends_transitively(seed.urn, rec.named("gitea-release").urn)
    assert not rec.depends_transitively(seed.urn, kustomization.urn)


def test_git_repository_reads_gitea_with_the_deploy_key(up):
    repository = up.named("flux-git-repository").inputs
    assert repository["spec"]["url"] == up.outputs["gitRepositoryUrl"]
    assert repository["spec"]["ref"] == {"branch": "main"}
    credentials = up.named("flux-gitea-credentials")
    assert repository["spec"]["secretRef"] == {"name": credentials.inputs["metadata"]["name"]}
    data = credentials.inputs["stringData"]
    assert credentials.is_secret("stringData") and data["identity"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    # known_hosts pins Gitea's own host key: the one Pulumi generated and mounted into Gitea.
    host_public = up.named("gitea-ssh-host-key").inputs["stringData"]["ssh_host_ed25519_key.pub"]
    assert data["known_hosts"] == f"[gitea-ssh.gitea.svc.cluster.local]:2222 {' '.join(host_public.split()[:2])}\n"
    # the Job registers exactly this deploy key, read-only
    env = {e["name"]: e.get("value") for e in up.named("gitea-seed").inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DEPLOY_KEY"] == " ".join(data["identity.pub"].split()[:2])


def test_kustomization_reconciles_the_stack_path_with_sops(up):
    spec = up.named("flux-kustomization").inputs["spec"]
    assert spec["path"] == f"./clusters/{up.stack}"
    assert spec["prune"] is True
    assert spec["sourceRef"] == {"kind": "GitRepository", "name": "flux-system"}
    assert spec["decryption"] == {"provider": "sops", "secretRef": {"name": "sops-age"}}
    domain = up.named("dns-zone").inputs["name"]
    issuer = {"dev": "letsencrypt-staging", "prod": "letsencrypt-production"}[up.stack]
    assert spec["postBuild"]["substitute"] == {"CLUSTER_DOMAIN": domain, "ACME_ISSUER": issuer}


def test_receiver_is_github_style_with_a_random_token(up):
    receiver = up.named("flux-receiver").inputs["spec"]
    assert receiver["type"] == "github" and "push" in receiver["events"]
    assert receiver["resources"] == [{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                                      "name": "flux-system"}]
    token = up.named("flux-webhook-token")
    assert receiver["secretRef"] == {"name": token.inputs["metadata"]["name"]} and token.is_secret("stringData")
    assert up.named("gitea-webhook-token").urn in token.property_dependencies["stringData"]


def test_in_cluster_objects_go_with_the_cluster(rec):
    first = first_controller(rec)
    for obj in in_cluster_objects(rec, "flux-") + [rec.named("flux-operator")]:
        assert obj.deleted_with == first.urn, obj.name


def test_no_secret_in_plain_text_in_outputs(up):
    secrets = [up.named("gitea-admin").inputs["stringData"]["password"],
               up.named("flux-webhook-token").inputs["stringData"]["token"],
               up.named("sops-secret").inputs["stringData"]["age.agekey"].strip()]
    public = {k: v for k, v in up.outputs.items() if k not in up.secret_outputs}
    for secret in secrets:
        assert secret not in repr(public)


def test_builds_from_its_args_alone():
    import pulumi

    from components.flux import Flux, FluxArgs
    from components.handover import GitSource
    from tests import standalone

    def program():
        seeded = standalone.marker("seeded")
        ready = standalone.marker("namespace")
        source = GitSource(url="ssh://git@git.example.net:22/fleet.git", branch="trunk",
                           known_hosts=pulumi.Output.from_input("git.example.net ssh-ed25519 AAAA\n"),
                           deploy_key_private=pulumi.Output.secret("-----BEGIN OPENSSH PRIVATE KEY-----\n"),
                           deploy_key_public=pulumi.Output.from_input("ssh-ed25519 AAAA"),
                           webhook_token=pulumi.Output.secret("t" * 40), seeded=seeded)
        Flux("cd", FluxArgs(operator_version=VERSIONS["fluxOperator"], flux_version=VERSIONS["flux"],
                            cluster=standalone.cluster(), namespace=pulumi.Output.from_input("gitops"),
                            namespace_ready=ready, decryption_secret="age", decryption_ready=ready,
                            source=source, path="clusters/lab", substitutions={"X": "1"}, after=[],
                            admin_host=standalone.host()))

    rec = standalone.build(program)
    repository = rec.named("cd-git-repository")
    assert repository.inputs["spec"]["ref"] == {"branch": "trunk"}
    assert rec.named("seeded").urn in repository.dependencies
    spec = rec.named("cd-kustomization").inputs["spec"]
    assert (spec["path"], spec["postBuild"]["substitute"]) == ("./clusters/lab", {"X": "1"})


def test_known_hosts_is_what_openssh_finds_for_the_host_flux_dials(up, tmp_path):
    """OpenSSH itself reads the known_hosts line: it names the host and port of the clone URL, and
    holds the public half of the host key mounted into Gitea."""
    from urllib.parse import urlsplit

    data = up.named("flux-gitea-credentials").inputs["stringData"]
    url = urlsplit(up.named("flux-git-repository").inputs["spec"]["url"])
    (tmp_path / "known_hosts").write_text(data["known_hosts"])
    found = subprocess.run(["ssh-keygen", "-F", f"[{url.hostname}]:{url.port}", "-f", str(tmp_path / "known_hosts")],
                           capture_output=True, text=True)
    assert found.returncode == 0 and found.stdout.strip(), found.stderr
    host_key = tmp_path / "host_key"
    host_key.write_text(up.named("gitea-ssh-host-key").inputs["stringData"]["ssh_host_ed25519_key"])
    host_key.chmod(0o600)
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(host_key)], capture_output=True, text=True, check=True)
    assert data["known_hosts"].split()[1:3] == derived.stdout.split()[:2]
    # and the deploy key Gitea registers is the public half of the identity Flux reads with
    identity = tmp_path / "identity"
    identity.write_text(data["identity"])
    identity.chmod(0o600)
    public = subprocess.run(["ssh-keygen", "-y", "-f", str(identity)], capture_output=True, text=True, check=True)
    env = {e["name"]: e.get("value") for e in up.named("gitea-seed").inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DEPLOY_KEY"] == " ".join(public.stdout.split()[:2])
