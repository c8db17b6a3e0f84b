"""The twin: a real control plane (etcd, kube-apiserver, controller-manager, scheduler at the
Kubernetes version the pinned k0s bundles) with kwok Nodes, built by `make twin`.

Fixtures: `twin` (session: the dev stack's cluster, nothing applied; `twin.kubeconfig` is an admin
kubeconfig, `twin_kubeconfig` gives its path) and `fresh_twin` (a factory: a new cluster for a
recording, stopped after the test). Every test here carries the `twin` marker: `pytest -m 'not
twin'` leaves them out.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from tests.twin import cluster, controlplane
from tests.twin.recording import record

HERE = Path(__file__).resolve().parent


def pytest_configure(config):
    config.addinivalue_line("markers", "twin: runs the twin cluster (tests/twin; built by `make twin`)")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.twin)


def require_binaries() -> None:
    try:
        controlplane.binaries()
    except controlplane.Missing as missing:
        pytest.skip(f"twin: {missing}")


def _running(stack: contextlib.ExitStack, directory: Path, rec):
    try:
        return stack.enter_context(cluster.running(directory, rec))
    except controlplane.Missing as missing:
        pytest.skip(f"twin: {missing}")


@pytest.fixture(scope="session")
def twin(tmp_path_factory):
    """The dev stack's twin cluster (Nodes and role players, nothing applied), for the session."""
    require_binaries()
    with contextlib.ExitStack() as stack:
        yield _running(stack, tmp_path_factory.mktemp("twin"), record("dev"))


@pytest.fixture(scope="session")
def twin_kubeconfig(twin) -> Path:
    """The admin kubeconfig of the session's twin."""
    return twin.kubeconfig


@pytest.fixture
def fresh_twin(tmp_path):
    """fresh_twin(rec) → a new twin cluster with `rec`'s Nodes; stopped after the test."""
    require_binaries()
    with contextlib.ExitStack() as stack:
        count = iter(range(100))
        yield lambda rec: _running(stack, tmp_path / f"twin-{next(count)}", rec)


@pytest.fixture
def gitea_built() -> None:
    """Skips, naming why, where the twin's Gitea was not built or its names cannot resolve."""
    from tests.twin import gitea

    try:
        gitea.binary()
    except gitea.Missing as missing:
        pytest.skip(f"twin: {missing}")
