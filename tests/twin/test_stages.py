"""What the program declares, applied for real to a twin cluster, stage by stage: every Helm release
installed (and awaited) from the pinned chart with exactly its values, every other object applied
server-side with strict validation, every host wait mirrored, in layers of the recorded graph."""

from __future__ import annotations

import json

import pytest

from tests.conftest import STACKS
from tests.twin.apply import RELEASE, Applier
from tests.twin.recording import record


@pytest.mark.parametrize("stack", STACKS)
def test_up_applies_stage_by_stage(stack, fresh_twin):
    rec = record(stack)
    twin = fresh_twin(rec)
    applier = Applier(twin, rec)
    try:
        applier.run()
    finally:
        print("\n".join(applier.log + ["roles played:"] + twin.roles.played + ["deferred:"] + applier.deferred
                        + ["role errors:"] + twin.roles.errors))
    assert twin.roles.errors == []

    releases = {r["name"]: r for r in json.loads(twin.helm("list", "-A", "-a", "-o", "json").stdout)}
    assert {name: r["status"] for name, r in releases.items()} == \
        {r.inputs["name"]: "deployed" for r in rec.of_type(RELEASE)}

    ingress = next(r for r in rec.of_type("command:remote:Command") if r.name == "cilium-ingress-ready")
    address = ingress.inputs["create"].split("LB_SERVICE=")[1].split("=")[1].split()[0]
    service = twin.get("service", "-n", "kube-system", "cilium-ingress")
    assert [i["ip"] for i in service["status"]["loadBalancer"]["ingress"]] == [address]
    claims = twin.get("pvc", "-A")["items"]
    assert claims and all(c["status"]["phase"] == "Bound" for c in claims)
    flux = twin.get("fluxinstance", "-n", "flux-system", "flux")
    assert [c["status"] for c in flux["status"]["conditions"] if c["type"] == "Ready"] == ["True"]
    # Only Flux's first sync is left to the gitops part of the twin, and it is named.
    assert sorted(d.split(":")[0] for d in applier.deferred) == ["flux-git-repository", "flux-synced"]

