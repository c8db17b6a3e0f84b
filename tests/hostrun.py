"""Running host scripts through the sshd harness: fresh host roots, twice-run idempotency checks,
and the k0s stand-in's shared cluster."""

from __future__ import annotations

import hashlib
import os
import shlex
import signal
import subprocess
from pathlib import Path
from typing import Optional

STANDINS = Path(__file__).resolve().parent / "standins"
# Commands that change a host: none of them may run on a second, converged run.
MUTATING = ("modprobe", "sysctl", "hostnamectl", "update-ca-certificates", "curl", "shutdown", "ip link delete",
            "ip netns delete", "k0s install", "k0s start", "k0s stop", "k0s reset", "k0s etcd leave",
            "k0s token invalidate", "k0s kubectl cordon", "k0s kubectl uncordon", "k0s kubectl drain",
            "k0s kubectl label", "k0s kubectl annotate", "k0s kubectl delete", "k0s restore",
            "systemctl daemon-reload", "systemctl enable", "systemctl disable")


def new_host(root: Path) -> Path:
    """A temporary root that looks like a fresh Debian host."""
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (root / "etc/hostname").write_text("localhost\n")
    (root / "sys/fs/cgroup").mkdir(parents=True)
    (root / "sys/fs/cgroup/cgroup.controllers").write_text("cpuset cpu io memory pids\n")  # cgroup v2
    return root


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "standins.log"}


def log_lines(root: Path) -> list[str]:
    log = root / "standins.log"
    return log.read_text().splitlines() if log.exists() else []


def twice(sshd, script, root, env=None, secret_env=None) -> tuple[str, list[str]]:
    """Run twice; assert the second run changed no file and ran no mutating command.
    Returns the first run's stdout and the commands it ran."""
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


def stop_standin_services(root: Path, cluster: Optional[Path] = None) -> None:
    """Kill the k0s stand-in's background services under `root` (a test's teardown)."""
    for pid_file in root.rglob("run/fake-k0s/pid"):
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError, PermissionError):
            pass


def command_env(line: str) -> dict[str, str]:
    """The `env K=V … bash -s` pairs of a host step's command line (CB_SCRIPT, the script, included)."""
    words = shlex.split(line)
    return dict(pair.split("=", 1) for pair in words[words.index("env") + 1:words.index("bash")])


def rendered(rec, step: str, field: str = "create") -> tuple[str, dict[str, str]]:
    """The script and environment of a host step's create (or delete) command, parsed from the
    command line the program registered."""
    env = command_env(rec.named(step).inputs[field])
    return env.pop("CB_SCRIPT"), env


def rendered_env(rec, step: str) -> dict[str, str]:
    """The environment of a host step's create command."""
    return rendered(rec, step)[1]


KUBECTL = STANDINS.parent.parent / "venv" / "tools" / "bin" / "kubectl"


def unknown_kubectl_flags(calls: list[str]) -> list[str]:
    """Flags of the logged `k0s kubectl VERB …` calls that the real kubectl's VERB does not define
    (its `--help`, an oracle apart from the stand-in). Empty when none, or kubectl is missing."""
    if not KUBECTL.exists():
        return []
    unknown, helps = [], {}
    for call in calls:
        if not call.startswith("k0s kubectl "):
            continue
        words = call.split()[2:]
        if words[0] == "-n":
            words = words[2:]
        verb = " ".join(words[:2] if words[0] == "rollout" else words[:1])
        if verb not in helps:
            helps[verb] = subprocess.run([str(KUBECTL), *verb.split(), "--help"], capture_output=True,
                                         text=True).stdout
        for word in words:
            flag = word.split("=", 1)[0]
            if flag.startswith("--") and f"{flag}=" not in helps[verb] and f"{flag} " not in helps[verb]:
                unknown.append(f"{verb} {flag}")
    return unknown
