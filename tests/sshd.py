"""A throwaway sshd on 127.0.0.1 and a runner that executes host scripts through it."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from components import remote

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
STANDINS = Path(__file__).resolve().parent / "standins"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Sshd:
    port: int
    key: Path
    user: str
    process: subprocess.Popen

    def run(self, script: str, root: Path, env: Optional[Mapping[str, str]] = None,
            secret_env: Optional[Mapping[str, str]] = None, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a host script over SSH exactly as the program renders it, inside `root`."""
        # (a test may give its own PATH: a host without some tool)
        full_env = {"PATH": f"{STANDINS}:/usr/sbin:/usr/bin:/sbin:/bin", **(env or {}), "ROOT": str(root),
                    "STANDIN_LOG": str(root / "standins.log")}
        stdin = (remote.secret_preamble(secret_env) if secret_env else "") + remote.program(script)
        return subprocess.run(
            ["ssh", "-i", str(self.key), "-p", str(self.port), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
             f"{self.user}@127.0.0.1", remote.command_line(script, full_env, sudo=False)],
            input=stdin, capture_output=True, text=True, timeout=timeout,
        )


def start(workdir: Path) -> Sshd:
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(workdir / name)], check=True)
    (workdir / "authorized_keys").write_text((workdir / "client_key.pub").read_text())
    os.chmod(workdir / "authorized_keys", 0o600)
    port = _free_port()
    config = workdir / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {workdir / 'host_key'}",
        f"AuthorizedKeysFile {workdir / 'authorized_keys'}", f"PidFile {workdir / 'sshd.pid'}",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
        "StrictModes no", "UsePAM no", "",
    ]))
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return Sshd(port, workdir / "client_key", getpass.getuser(), process)
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {process.stderr.read().decode()}")
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("sshd did not listen within 15 s")
