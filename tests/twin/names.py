"""The program's in-cluster names, resolved to the twin's processes for the processes that need
them, and for nobody else: each such process runs in a mount namespace of its own where a hosts
file of the test is bind-mounted over /etc/hosts (what `ip netns exec` does with
/etc/netns/<name>/hosts; iproute2 ip-netns(8)). The network stays the machine's loopback: every
twin process listens on an address of 127.0.0.0/8 of its own, so parallel tests never share a port,
and no traffic leaves the machine. The machine's /etc/hosts is never touched."""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path
from typing import Mapping

_next = itertools.count(1)


class Unavailable(Exception):
    """No mount namespaces here (not root, or no util-linux `unshare`)."""


def loopback() -> str:
    """A loopback address no other twin process of this machine uses (127.77.<worker>.<n>)."""
    return f"127.77.{os.getpid() % 250 + 1}.{next(_next) % 250 + 1}"


def available() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") is not None


def resolving(hosts: Mapping[str, str], directory: Path) -> list[str]:
    """The command prefix that runs a program with `hosts` (name → address) in its /etc/hosts."""
    if not available():
        raise Unavailable("resolving the program's in-cluster names needs root and util-linux's `unshare`")
    directory.mkdir(parents=True, exist_ok=True)
    file = directory / "hosts"
    lines = ["127.0.0.1 localhost", *(f"{address} {name}" for name, address in sorted(hosts.items()))]
    file.write_text("\n".join(lines) + "\n")
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            f'mount --bind "{file}" /etc/hosts && exec "$@"', "resolving"]
