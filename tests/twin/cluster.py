"""One twin cluster for one recorded stack: the control plane, the stack's Nodes, the role players."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from tests.twin import controlplane, nodes
from tests.twin.apply import RELEASE
from tests.twin.roles import Roles


def cilium_version(rec) -> str | None:
    return next((r.inputs["version"] for r in rec.of_type(RELEASE) if r.inputs.get("chart") == "cilium"), None)


@contextlib.contextmanager
def running(directory: Path, rec) -> Iterator[controlplane.Twin]:
    """A started twin with `rec`'s Nodes and the role players (twin.roles); everything stopped on exit."""
    version = cilium_version(rec)
    if version:  # its operator's CRDs: fail fast (Missing) when `make twin` could not fetch them
        controlplane.go_module_dir("github.com/cilium/cilium", "v" + version)
    twin = controlplane.start(directory)
    roles = None
    try:
        twin.nodes = nodes.create(twin, rec)
        twin.roles = roles = Roles(twin, cilium_version(rec))
        roles.start()
        yield twin
    finally:
        try:
            if roles is not None:
                roles.stop()
        finally:
            twin.stop()
