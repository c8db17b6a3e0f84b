"""The upgrade path from the previous release's pins: k0s, Cilium and cert-manager move one minor
at a time, checked against what really runs (over SSH, or in the cluster) before anything changes."""

from __future__ import annotations

from pathlib import Path

import pytest


from tests.hostrun import MUTATING, log_lines, rendered_env
from tests.pins import BETWEEN, PREVIOUS, VERSIONS

COMMAND = "command:remote:Command"
# what the workloads run, as the charts render their images (tag, then digest)
IMAGES = {"cilium": ("kube-system/daemonset/cilium", "Cilium", "quay.io/cilium/cilium:v{v}@sha256:" + "0" * 64),
          "certManager": ("cert-manager/deployment/cert-manager", "cert-manager",
                          "quay.io/jetstack/cert-manager-controller:{v}")}


def test_every_host_is_checked_before_any_host_changes(up):
    from tests.conftest import raw_config

    checks = [r for r in up.of_type(COMMAND) if r.name.startswith("k0s-version-")]
    assert sorted(c.name for c in checks) == sorted(f"k0s-version-{n['name']}" for n in raw_config(up.stack)["nodes"])
    nodes = [r for r in up.resources.values() if r.custom and r.name.startswith("node-")]
    for step in nodes:  # prepare, trust, stage, uploads: after every host's check
        for check in checks:
            assert up.depends_transitively(step.urn, check.urn), (step.name, check.name)
    for check in checks:
        env = rendered_env(up, check.name)
        assert env["K0S_VERSION"] == VERSIONS["k0s"] and not check.inputs.get("delete")


@pytest.mark.parametrize("layer,component", [("cilium", "cilium"), ("cert-manager", "certManager")])
def test_releases_move_only_after_their_running_version_is_checked(up, layer, component):
    check, release = up.named(f"{layer}-upgrade-check"), up.named(f"{layer}-release")
    assert check.urn in release.dependencies
    env = rendered_env(up, check.name)
    assert (env["WORKLOAD"], env["VERSION"]) == (IMAGES[component][0], VERSIONS[component])


def running(fleet, component: str, version: str) -> None:
    """The stand-in API's workload of `component`, running `version` (its first line: the image)."""
    workload, _, image = IMAGES[component]
    namespace, kind, name = workload.split("/")
    path = Path(fleet.cluster) / "objects" / kind / namespace / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(image.format(v=version.lstrip("v") if component == "cilium" else version) + "\n")


def check(fleet, controller, component: str, version: str):
    workload, name, _ = IMAGES[component]
    return fleet.run("release-upgrade-check.sh", controller, COMPONENT=name, WORKLOAD=workload, VERSION=version)


@pytest.mark.parametrize("component", ["cilium", "certManager"])
def test_a_skipped_minor_is_refused_naming_the_one_between(fleet, component):
    controller = fleet.first_controller()
    assert check(fleet, controller, component, VERSIONS[component]).returncode == 0  # not installed: fresh
    running(fleet, component, PREVIOUS[component])
    marks = len(log_lines(controller))
    refused = check(fleet, controller, component, VERSIONS[component])
    step = BETWEEN[component][-1].lstrip("v")
    assert refused.returncode != 0
    assert f"upgrade to {'.'.join(step.split('.')[:2])}.x first" in refused.stderr, refused.stderr
    assert f"runs v{PREVIOUS[component].lstrip('v')};" in refused.stderr  # the running image's tag
    for version in (BETWEEN[component][-1], PREVIOUS[component]):  # one minor up, or a patch: fine
        assert check(fleet, controller, component, version).returncode == 0, version
    running(fleet, component, BETWEEN[component][-1])
    assert check(fleet, controller, component, VERSIONS[component]).returncode == 0
    assert check(fleet, controller, component, PREVIOUS[component]).returncode != 0  # a lower minor
    assert not [c for c in log_lines(controller)[marks:] if c.startswith(MUTATING)]


def test_the_previous_pins_still_build_a_valid_plan():
    """An existing cluster's stack, before its user moves the pins: the program runs at them."""
    from tests.conftest import raw_config, run_with

    rec = run_with(stack="prod", preview=False, versions={**raw_config("prod")["versions"], **PREVIOUS})
    assert rendered_env(rec, "k0s-version-cp-1")["K0S_VERSION"] == PREVIOUS["k0s"]
    assert rec.named("cilium-release").inputs["version"] == PREVIOUS["cilium"]
