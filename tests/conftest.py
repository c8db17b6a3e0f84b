"""Run the real program (__main__.py) under Pulumi's mock monitor with the tests' own stacks.

The stack files are fixtures under tests/fixtures (copies the tests own), never the committed
Pulumi.<stack>.yaml: those are the user's to edit, and are only checked for being valid.

The recording monitor is `tooling.offline.RecordingMonitor` (a `pulumi.runtime.mocks.MockMonitor`
subclass, shared with `make plan`): it keeps each registration's type, name, parent, dependencies,
propertyDependencies and options (protect, additionalSecretOutputs, deletedWith, provider…).
Preview mode leaves computed outputs unknown, as a first `pulumi preview` does.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from pathlib import Path
from typing import Any, Optional

import pytest

from tooling import offline, stackfile
from stacks.config import NAMESPACE, decode_value
from tooling.offline import Recording, RecordingMonitor  # noqa: F401  (re-exported for tests)
from tests.fleet import fleet  # noqa: F401  (the k0s stand-in's hosts: a fixture for every test module)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
STACKS = ("dev", "prod")
MODES = {"preview": True, "up": False}
_cache: dict[tuple[str, bool], Recording] = {}


def fixture_config(stack: str) -> tuple[dict[str, str], list[str]]:
    """A fixture stack's config, as the engine would pass it."""
    return stackfile.read(stack, stack_dir=FIXTURES)


def run_stack(stack: str, preview: bool) -> Recording:
    """A fixture stack's recording (each stack and mode runs once per session)."""
    key = (stack, preview)
    if key not in _cache:
        config, secret = fixture_config(stack)
        _cache[key] = offline.run(stack, preview=preview, config=config, secret_keys=secret)
    return _cache[key]


def raw_config(stack: str = "dev") -> dict[str, Any]:
    """A fixture stack's config as decoded values by key (without the namespace)."""
    config, _ = fixture_config(stack)
    prefix = NAMESPACE + ":"
    return {k[len(prefix):]: decode_value(v) for k, v in config.items() if k.startswith(prefix)}


def run_with(stack: str = "dev", preview: bool = True, secret: Optional[list[str]] = None,
             **changes: Any) -> Recording:
    """Run the program with a fixture stack's config changed (a value of None removes the key)."""
    config, _ = fixture_config(stack)
    for key, value in changes.items():
        full = f"{NAMESPACE}:{key}"
        if value is None:
            config.pop(full, None)
        else:
            config[full] = value if isinstance(value, str) else json.dumps(value)
    return offline.run(stack, preview=preview, config=config,
                       secret_keys=[f"{NAMESPACE}:{k}" for k in secret or []])


def first_controller(rec: Recording):
    """The first controller's install step: what every in-cluster object is deleted with."""
    return rec.named("k0s-dev-1" if rec.stack == "dev" else "k0s-cp-1")


def in_cluster_objects(rec: Recording, prefix: str) -> list:
    """A layer's Kubernetes objects (by resource-name prefix), Helm releases aside."""
    return [r for r in rec.resources.values() if r.custom and r.name.startswith(prefix)
            and r.type.startswith("kubernetes:") and r.type != "kubernetes:helm.sh/v3:Release"]


@pytest.fixture(params=[(s, m) for s in STACKS for m in MODES], ids=lambda p: f"{p[0]}-{p[1]}")
def rec(request) -> Recording:
    stack, mode = request.param
    return run_stack(stack, MODES[mode])


@pytest.fixture(params=STACKS)
def up(request) -> Recording:
    return run_stack(request.param, preview=False)


@pytest.fixture(params=STACKS)
def preview(request) -> Recording:
    return run_stack(request.param, preview=True)


@contextlib.contextmanager
def moto_server():
    """A moto server on 127.0.0.1 (an ephemeral port), from an empty account; yields a function
    that gives a boto3 client for a service (its `url` attribute: the server's)."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # moto keeps its state per process, across servers: start each test from an empty account
    urllib.request.urlopen(urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST"))

    def client(service: str):
        return boto3.client(service, endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    client.url = f"http://{host}:{port}"
    try:
        yield client
    finally:
        server.stop()


@pytest.fixture
def aws():
    """moto_server() for one test."""
    with moto_server() as client:
        yield client


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """sshd on 127.0.0.1 (openssh-server, installed by `make test`); stopped after the session."""
    from tests import sshd as sshd_module

    server = sshd_module.start(tmp_path_factory.mktemp("sshd"))
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)
