"""k0s's host scripts (install, join, tokens, kubeconfig, reset) run over SSH against the k0s
stand-in, which models k0s's start-up: `start` returns before the service reads its token file,
the service restarts until it has joined, tokens expire, and status/readyz need a joined node."""

from __future__ import annotations

import base64
import gzip
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.hostrun import STANDINS, log_lines, new_host, stop_standin_services, twice
from tests.pins import VERSIONS

VERSION = VERSIONS["k0s"]
CONFIG = base64.b64encode(b"apiVersion: k0s.k0sproject.io/v1beta1\nkind: ClusterConfig\n").decode()
JOURNAL = "run/fake-k0s/journal"


class Fleet:
    """Hosts of one fake cluster: separate roots sharing the stand-in's cluster state."""

    def __init__(self, sshd, tmp_path: Path):
        self.sshd, self.tmp, self.cluster = sshd, tmp_path, tmp_path / "cluster"
        self.roots: list[Path] = []

    def host(self, name: str) -> Path:
        root = new_host(self.tmp / name)
        self.roots.append(root)
        staged = root / f"var/lib/cluster-bootstrap/bin/k0s-{VERSION}"
        staged.parent.mkdir(parents=True)
        staged.write_bytes((STANDINS / "fake-k0s").read_bytes())
        staged.chmod(0o755)
        return root

    def env(self, **env) -> dict:
        return {"FAKE_CLUSTER": str(self.cluster), "FAKE_PYTHON": sys.executable, "K0S_VERSION": VERSION,
                "FAKE_K0S_START_DELAY": "0.5", "FAKE_K0S_RESTART_SEC": "0.5", "WAIT_SECONDS": "20", **env}

    def run(self, script, root, secret_env=None, **env):
        return self.sshd.run(script, root, self.env(**env), secret_env)

    def twice(self, script, root, secret_env=None, **env):
        return twice(self.sshd, script, root, self.env(**env), secret_env)

    def k0s(self, root: Path, *args: str, **env) -> subprocess.CompletedProcess:
        """The stand-in itself, as an operator would run it on the host."""
        return subprocess.run([str(root / "usr/local/bin/k0s"), *args], capture_output=True, text=True,
                              env={"ROOT": str(root), "STANDIN_LOG": str(root / "standins.log"),
                                   "FAKE_CLUSTER": str(self.cluster), "FAKE_PYTHON": sys.executable,
                                   "PATH": "/usr/bin:/bin", **env})

    def first_controller(self) -> Path:
        root = self.host("cp-1")
        self.twice("k0s-node.sh", root, ROLE="controller", K0S_CONFIG_B64=CONFIG)
        return root

    def token(self, controller: Path, role: str, expiry: str = "2h") -> str:
        done = self.run("k0s-token.sh", controller, TOKEN_ROLE=role, TOKEN_EXPIRY=expiry)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


@pytest.fixture
def fleet(sshd, tmp_path):
    fleet = Fleet(sshd, tmp_path)
    yield fleet
    for root in fleet.roots:
        stop_standin_services(root)


def decoded(token: str) -> dict:
    return yaml.safe_load(gzip.decompress(base64.b64decode(token)))


def test_first_controller_installs_once_and_serves(fleet):
    root = fleet.host("cp-1")
    _, calls = fleet.twice("k0s-node.sh", root, ROLE="controller+worker", K0S_CONFIG_B64=CONFIG)
    installs = [c for c in calls if c.startswith("k0s install")]
    assert installs == ["k0s install controller --config /etc/k0s/k0s.yaml --enable-worker --no-taints"]
    assert "k0s start" in calls and (root / "etc/k0s/k0s.yaml").exists()
    assert not (root / "etc/k0s/join-token").exists()  # the first controller joins nothing

    kubeconfig = fleet.run("k0s-kubeconfig.sh", root)
    assert kubeconfig.returncode == 0 and yaml.safe_load(kubeconfig.stdout)["kind"] == "Config"


def test_worker_joins_and_keeps_only_a_spent_token(fleet):
    controller = fleet.first_controller()
    token = fleet.token(controller, "worker")
    assert decoded(token)["users"][0]["name"] == "kubelet-bootstrap"
    worker = fleet.host("worker-1")
    _, calls = fleet.twice("k0s-node.sh", worker, {"JOIN_TOKEN": token}, ROLE="worker", NODE_LABELS="pool=general")
    assert [c for c in calls if c.startswith("k0s install")] == [
        "k0s install worker --labels pool=general --token-file /etc/k0s/join-token"]
    assert (worker / "var/lib/k0s/kubelet.conf").exists()
    # The file stays (k0s v1.35.1 parses it on every start) but no longer holds the credential.
    spent = (worker / "etc/k0s/join-token").read_text().strip()
    assert spent != token and token.split(".")[-1] not in spent
    kubeconfig = decoded(spent)
    assert kubeconfig["users"][0]["name"] == kubeconfig["contexts"][0]["context"]["user"] == "kubelet-bootstrap"
    assert oct((worker / "etc/k0s/join-token").stat().st_mode & 0o777) == "0o600"


def test_controllers_join_with_a_controller_token(fleet):
    controller = fleet.first_controller()
    token = fleet.token(controller, "controller")
    second = fleet.host("cp-2")
    fleet.twice("k0s-node.sh", second, {"JOIN_TOKEN": token}, ROLE="controller", K0S_CONFIG_B64=CONFIG)
    assert (second / "var/lib/k0s/etcd/member/snap/db").exists()
    assert decoded((second / "etc/k0s/join-token").read_text())["users"][0]["name"] == "controller-bootstrap"


def test_a_worker_token_cannot_join_a_controller(fleet):
    controller = fleet.first_controller()
    second = fleet.host("cp-2")
    done = fleet.run("k0s-node.sh", second, {"JOIN_TOKEN": fleet.token(controller, "worker")},
                     ROLE="controller", K0S_CONFIG_B64=CONFIG, WAIT_SECONDS="4")
    assert done.returncode != 0 and "has not joined" in done.stderr
    assert "wrong token type" in (second / JOURNAL).read_text()


def test_standin_fails_a_join_whose_token_file_is_removed_after_start(fleet):
    """What k0s does, and the old script relied on not happening: the file is read after `start`."""
    controller = fleet.first_controller()
    worker = fleet.host("worker-1")
    binary = worker / "usr/local/bin/k0s"
    binary.parent.mkdir(parents=True)
    binary.write_bytes((STANDINS / "fake-k0s").read_bytes())
    binary.chmod(0o755)
    (worker / "etc/k0s").mkdir(parents=True)
    (worker / "etc/k0s/join-token").write_text(fleet.token(controller, "worker"))
    assert fleet.k0s(worker, "install", "worker", "--token-file", "/etc/k0s/join-token").returncode == 0
    assert fleet.k0s(worker, "start").returncode == 0  # returns at once
    assert fleet.k0s(worker, "status").returncode != 0
    (worker / "etc/k0s/join-token").unlink()
    time.sleep(3)
    assert fleet.k0s(worker, "status").returncode != 0
    assert "not found" in (worker / JOURNAL).read_text()
    assert not (worker / "var/lib/k0s/kubelet.conf").exists()


def test_an_expired_token_fails_clearly_and_a_fresh_one_recovers(fleet):
    controller = fleet.first_controller()
    stale = fleet.token(controller, "worker", expiry="1s")
    time.sleep(2)
    worker = fleet.host("worker-1")
    failed = fleet.run("k0s-node.sh", worker, {"JOIN_TOKEN": stale}, ROLE="worker", WAIT_SECONDS="4")
    assert failed.returncode != 0
    assert "k0sworker has not joined and served within 4s; see: journalctl -u k0sworker" in failed.stderr
    assert "token expired" in (worker / JOURNAL).read_text()
    # A re-run with a fresh token rewrites the file and restarts the unit installed before.
    recovered = fleet.run("k0s-node.sh", worker, {"JOIN_TOKEN": fleet.token(controller, "worker")}, ROLE="worker")
    assert recovered.returncode == 0, recovered.stderr
    calls = log_lines(worker)
    assert calls.count("k0s install worker --token-file /etc/k0s/join-token") == 1
    assert (worker / "var/lib/k0s/kubelet.conf").exists()


def test_a_joined_worker_restarts_on_k0s_that_parses_the_token_every_start(fleet):
    """k0s v1.35.1 (k0s #7202): the spent token parses, so the restart works; no file would not."""
    controller = fleet.first_controller()
    worker = fleet.host("worker-1")
    joined = fleet.run("k0s-node.sh", worker, {"JOIN_TOKEN": fleet.token(controller, "worker")}, ROLE="worker")
    assert joined.returncode == 0, joined.stderr
    v1351 = {"FAKE_K0S_PARSE_TOKEN": "always"}
    for args in (("stop",), ("start",)):
        assert fleet.k0s(worker, *args, **v1351).returncode == 0
    time.sleep(2)
    assert fleet.k0s(worker, "status", **v1351).returncode == 0
    fleet.k0s(worker, "stop")
    (worker / "etc/k0s/join-token").unlink()
    fleet.k0s(worker, "start", **v1351)
    time.sleep(2)
    assert fleet.k0s(worker, "status", **v1351).returncode != 0


def test_config_change_restarts_the_controller(fleet):
    root = fleet.first_controller()
    calls = len(log_lines(root))
    changed = base64.b64encode(b"spec: {telemetry: {enabled: false}}\n").decode()
    assert fleet.run("k0s-node.sh", root, ROLE="controller", K0S_CONFIG_B64=changed).returncode == 0
    assert log_lines(root)[calls:][:2] == ["k0s stop", "k0s start"]


def test_worker_without_token_fails_clearly(fleet):
    done = fleet.run("k0s-node.sh", fleet.host("worker-1"), ROLE="worker")
    assert done.returncode != 0 and "needs JOIN_TOKEN" in done.stderr


def test_reset_stops_first_and_is_idempotent(fleet):
    controller = fleet.first_controller()
    worker = fleet.host("worker-1")
    assert fleet.run("k0s-node.sh", worker, {"JOIN_TOKEN": fleet.token(controller, "worker")},
                     ROLE="worker").returncode == 0
    _, calls = fleet.twice("k0s-reset.sh", worker, REBOOT="true")
    assert calls.index("k0s stop") < calls.index("k0s reset")
    assert any(c.startswith("shutdown -r") for c in calls)
    assert not (worker / "usr/local/bin/k0s").exists() and not (worker / "var/lib/k0s").exists()
    assert not list((worker / "etc/systemd/system").glob("k0s*"))
