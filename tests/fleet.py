"""The k0s stand-in's fleet for host-script tests: hosts (separate roots) of one fake cluster,
reached over the test sshd, with k0s versions staged as the Node layer leaves them."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostrun import STANDINS, new_host, stop_standin_services, twice
from tests.pins import VERSIONS, next_patch

VERSION = VERSIONS["k0s"]
NEXT = next_patch(VERSION)
CONFIG = base64.b64encode(b"apiVersion: k0s.k0sproject.io/v1beta1\nkind: ClusterConfig\n").decode()
JOURNAL = "run/fake-k0s/journal"


class Fleet:
    """Hosts of one fake cluster: separate roots sharing the stand-in's cluster state."""

    def __init__(self, sshd, tmp_path: Path):
        self.sshd, self.tmp, self.cluster = sshd, tmp_path, tmp_path / "cluster"
        self.roots: list[Path] = []

    def host(self, name: str, versions: tuple[str, ...] = (VERSION,)) -> Path:
        """A fresh host named `name` (its Node's name) with these k0s versions staged, and an
        address of its own (where the stand-in's API answers while it runs a controller)."""
        root = new_host(self.tmp / name)
        (root / "etc/hostname").write_text(name + "\n")
        self.roots.append(root)
        (root / "etc/fake-address").write_text(f"192.0.2.{100 + len(self.roots)}\n")
        for version in versions:
            self.stage(root, version)
        return root

    @staticmethod
    def stage(root: Path, version: str) -> None:
        """What stage-k0s.sh leaves: the binary of `version` (the stand-in, printing that version)."""
        staged = root / f"var/lib/cluster-bootstrap/bin/k0s-{version}"
        staged.parent.mkdir(parents=True, exist_ok=True)
        shebang, rest = (STANDINS / "fake-k0s").read_text().split("\n", 1)
        staged.write_text(f"{shebang}\nFAKE_K0S_VERSION={version}\n{rest}")
        staged.chmod(0o755)

    def env(self, **env) -> dict:
        return {"FAKE_CLUSTER": str(self.cluster), "FAKE_PYTHON": sys.executable, "K0S_VERSION": VERSION,
                "FAKE_K0S_START_DELAY": "0.5", "FAKE_K0S_RESTART_SEC": "0.5", "WAIT_SECONDS": "20", **env}

    def run(self, script, root, secret_env=None, timeout: float = 60, **env):
        return self.sshd.run(script, root, self.env(**env), secret_env, timeout=timeout)

    def twice(self, script, root, secret_env=None, **env):
        return twice(self.sshd, script, root, self.env(**env), secret_env)

    def k0s(self, root: Path, *args: str, **env) -> subprocess.CompletedProcess:
        """The stand-in itself, as an operator would run it on the host."""
        return subprocess.run([str(root / "usr/local/bin/k0s"), *args], capture_output=True, text=True,
                              env={"ROOT": str(root), "STANDIN_LOG": str(root / "standins.log"),
                                   "FAKE_CLUSTER": str(self.cluster), "FAKE_PYTHON": sys.executable,
                                   "PATH": "/usr/bin:/bin", **env})

    def first_controller(self, role: str = "controller", versions: tuple[str, ...] = (VERSION,)) -> Path:
        """cp-1 with `versions` staged, running the first of them."""
        root = self.host("cp-1", versions)
        self.twice("k0s-node.sh", root, ROLE=role, K0S_CONFIG_B64=CONFIG, FIRST="true", K0S_VERSION=versions[0])
        return root

    def token(self, controller: Path, role: str, expiry_seconds: int = 7200) -> str:
        """What the token step prints: "expires=<unix time>", then the token."""
        done = self.run("k0s-token.sh", controller, TOKEN_ROLE=role, TOKEN_EXPIRY_SECONDS=str(expiry_seconds))
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def join(self, controller: Path, name: str, role: str = "worker", versions=(VERSION,), **env) -> Path:
        """A node joined with a fresh token of its own."""
        root = self.host(name, versions)
        token = self.token(controller, "worker" if role == "worker" else "controller")
        if role != "worker":
            env.setdefault("K0S_CONFIG_B64", CONFIG)
        done = self.run("k0s-node.sh", root, {"JOIN_TOKEN": token}, ROLE=role, **env)
        assert done.returncode == 0, done.stderr
        return root

    @staticmethod
    def address(root: Path) -> str:
        return (root / "etc/fake-address").read_text().strip()

    def node(self, name: str) -> list[str]:
        """The stand-in API's Node object: its state lines, labels and annotations."""
        path = self.cluster / "objects/node/_" / name
        return path.read_text().splitlines() if path.exists() else []

    def set_node_ready(self, name: str, ready: bool = True) -> None:
        """What the kubelet and Cilium do: the Node's Ready condition."""
        lines = [line for line in self.node(name) if line not in ("Ready", "NotReady")]
        (self.cluster / "objects/node/_" / name).write_text("\n".join(["Ready" if ready else "NotReady", *lines]) + "\n")


@pytest.fixture
def fleet(sshd, tmp_path):
    fleet = Fleet(sshd, tmp_path)
    yield fleet
    for root in fleet.roots:
        stop_standin_services(root)
