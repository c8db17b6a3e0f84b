"""What the twin runs: the Kubernetes and etcd versions the pinned k0s bundles, and where they are built.

`versions.k0s` in Pulumi.yaml is mapped through K0S, copied from k0s's
embedded-bins/Makefile.variables at each tag (`kubernetes_version`, `etcd_version`). When the Go
module proxy does not serve the etcd version k0s bundles, the nearest served one is built and named.
`python -m tests.twin.versions` prints them as shell assignments for tests/twin/build.sh.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from tests.pins import VERSIONS

# k0s tag → (kubernetes_version, etcd_version), from k0sproject/k0s embedded-bins/Makefile.variables
K0S = {
    "v1.34.2+k0s.0": ("1.34.2", "3.6.6"),
    "v1.36.3+k0s.2": ("1.36.3", "3.6.14"),
}
# etcd versions k0s bundles that proxy.golang.org does not serve (go.etcd.io/etcd/server/v3) → nearest served
ETCD_SERVED = {"3.6.6": "3.6.5"}
KWOK = "0.8.0"  # sigs.k8s.io/kwok, newest served


class UnknownK0s(LookupError):
    pass


def versions(k0s: str = VERSIONS["k0s"]) -> dict[str, str]:
    if k0s not in K0S:
        raise UnknownK0s(f"k0s {k0s} is not in tests/twin/versions.py K0S: add its kubernetes_version and "
                         "etcd_version from k0s's embedded-bins/Makefile.variables at that tag")
    kube, etcd = K0S[k0s]
    return {"K0S": k0s, "KUBE": kube, "ETCD_BUNDLED": etcd, "ETCD": ETCD_SERVED.get(etcd, etcd), "KWOK": KWOK,
            "CILIUM": VERSIONS["cilium"]}  # its CRDs, read from the Go module cache (tests/twin/roles.py)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cluster-bootstrap" / "twin"


def key(v: dict[str, str]) -> str:
    return f"kube-v{v['KUBE']}-etcd-v{v['ETCD']}-kwok-v{v['KWOK']}"


def bin_dir(v: dict[str, str] | None = None) -> Path:
    """Where `make twin` puts the binaries for these versions."""
    v = v or versions()
    return cache_root() / key(v) / "bin"


if __name__ == "__main__":
    try:  # $TWIN_K0S builds for another k0s tag (to prepare a bump); the tests always use the pin
        found = versions(os.environ.get("TWIN_K0S") or VERSIONS["k0s"])
    except UnknownK0s as error:
        print(f"echo {shlex.quote(str(error))} >&2; exit 0")
        sys.exit(0)
    found["OUT"] = str(cache_root() / key(found))
    for name, value in found.items():
        print(f"{name}={shlex.quote(value)}")
