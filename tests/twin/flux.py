"""Flux's own controllers for the twin: source-controller and kustomize-controller, built by
`make twin` from their Go modules at the versions the pinned Flux ships (read from the Flux
Operator's embedded manifests at the pin), or the nearest the Go module proxy serves."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Iterator

from tests.pins import VERSIONS
from tests.twin.versions import cache_root

# Flux release → controller → (the version it ships: flux-operator config/data/flux/v<flux>/, the
# version built: the nearest the proxy serves). For 2.8.7: source-controller v1.8.4 is not served
# (v1.8.5 is; its github.com/fluxcd/pkg/artifact v0.8.1 is refused, v0.8.0 built instead);
# kustomize-controller v1.8.5 is not served (v1.7.3 and v1.9.0 are: v1.9.0, the one whose
# Kubernetes libraries match the twin's 1.36).
CONTROLLERS = {
    "2.8.7": {"source-controller": ("1.8.4", "1.8.5"), "kustomize-controller": ("1.8.5", "1.9.0")},
}


def versions(flux: str = VERSIONS["flux"]) -> dict[str, tuple[str, str]]:
    if flux not in CONTROLLERS:
        raise LookupError(f"Flux {flux} is not in tests/twin/flux.py CONTROLLERS: add the versions of its "
                          "controllers (flux-operator config/data/flux/v<flux>/) and the nearest served ones")
    return CONTROLLERS[flux]


def build_dir(controller: str) -> Path:
    return cache_root() / f"{controller}-v{versions()[controller][1]}"


def binary(controller: str) -> Path:
    return build_dir(controller) / controller


if __name__ == "__main__":  # for tests/twin/build-flux.sh: one "controller built-version dir" line each
    for name, (_, built) in versions().items():
        print(name, built, build_dir(name))


class Missing(Exception):
    """A controller was not built (no Go, or the proxy refused its module)."""


SOURCE_HOST = "source-controller.flux-system.svc.cluster.local"  # its Service, as artifact URLs name it


def require() -> None:
    for name in versions():
        if not binary(name).is_file():
            raise Missing(f"no {name} built at {build_dir(name)} (run `make twin`; it needs Go and the module proxy)")


@contextlib.contextmanager
def running(twin, directory: Path, resolving_hosts: dict[str, str]) -> Iterator[dict]:
    """source-controller and kustomize-controller against the twin's API server (admin kubeconfig,
    as the operator's ServiceAccounts would be cluster admins too), watching every namespace, with
    the in-cluster names in `resolving_hosts` (and the source-controller's own) resolving for them.
    Yields their log paths."""
    from tests.twin import names

    require()
    address = names.loopback()
    hosts = {**resolving_hosts, SOURCE_HOST: address}
    prefix = names.resolving(hosts, directory / "names")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(directory), "KUBECONFIG": str(twin.kubeconfig),
           "RUNTIME_NAMESPACE": "flux-system"}
    (directory / "storage").mkdir(parents=True, exist_ok=True)
    ports = iter(range(18080, 18090))
    commands = {
        "source-controller": [f"--storage-path={directory / 'storage'}", f"--storage-addr={address}:80",
                              f"--storage-adv-addr={SOURCE_HOST}.", f"--metrics-addr={address}:{next(ports)}",
                              f"--health-addr={address}:{next(ports)}", "--log-level=debug"],
        "kustomize-controller": [f"--metrics-addr={address}:{next(ports)}", f"--health-addr={address}:{next(ports)}",
                                 "--log-level=debug", "--no-remote-bases=true"],
    }
    processes, logs = [], {}
    try:
        for name, flags in commands.items():
            logs[name] = directory / f"{name}.log"
            with open(logs[name], "w") as out:
                processes.append(subprocess.Popen([*prefix, str(binary(name)), *flags], env=env, stdout=out,
                                                  stderr=subprocess.STDOUT))
        yield logs
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
