"""Running host scripts through the sshd harness: fresh host roots, twice-run idempotency checks,
and the k0s stand-in's shared cluster."""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path
from typing import Optional

STANDINS = Path(__file__).resolve().parent / "standins"
# Commands that change a host: none of them may run on a second, converged run.
MUTATING = ("modprobe", "sysctl", "hostnamectl", "update-ca-certificates", "curl", "shutdown",
            "k0s install", "k0s start", "k0s stop", "k0s reset")


def new_host(root: Path) -> Path:
    """A temporary root that looks like a fresh Debian host."""
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (root / "etc/hostname").write_text("localhost\n")
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
