"""`make charts`: the pinned Helm charts, pulled with `helm pull` from their real repositories into
a cache, for the chart tests (real renders) on a machine with the internet.

Which charts: the Helm releases the program registers for the example stack `make stack` writes
(chart, repository and version exactly as `pulumi up` would install them). Where: $CHARTS_CACHE,
else ${XDG_CACHE_HOME:-~/.cache}/cluster-bootstrap/charts, as <name>-<version>.tgz with a
SHA256SUMS, the layout of the offline folder tests/charts.py reads.

Verified: a chart from an HTTP repository must match the sha256 `digest` its repository's
index.yaml publishes (helm itself checks nothing without provenance files); an OCI chart is
content-addressed, and helm checks the layer against the registry's manifest (its digest is kept
in SHA256SUMS.oci). Nothing unverified lands in the cache.

`--if-missing` (what `make test` runs): nothing at all when an offline folder exists
(../shared/charts, $CHARTS_DIR) or the cache is complete; a note, not a failure, when the
repositories cannot be reached. Without it, an unreachable repository fails in seconds (exit 2).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import yaml

ROOT = Path(__file__).resolve().parent.parent
HELM = ROOT / "venv" / "tools" / "bin" / "helm"
CONNECT_TIMEOUT = 5


class ChartsError(Exception):
    """A repository that cannot be reached, a pull that failed, a digest that does not match."""


@dataclass(frozen=True)
class Chart:
    name: str  # the file's name part: cilium, flux-operator…
    version: str
    repo: str  # https://… (an HTTP repository) or oci://… (the chart's full reference)

    @property
    def file(self) -> str:
        return f"{self.name}-{self.version}.tgz"

    @property
    def is_oci(self) -> bool:
        return self.repo.startswith("oci://")


def cache_dir() -> Path:
    if os.environ.get("CHARTS_CACHE"):
        return Path(os.environ["CHARTS_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "cluster-bootstrap" / "charts"


def offline_dir() -> Path | None:
    """The offline folder CI here uses: $CHARTS_DIR, else the nearest shared/charts above the checkout."""
    if os.environ.get("CHARTS_DIR"):
        return Path(os.environ["CHARTS_DIR"])
    for parent in ROOT.parents:
        if (parent / "shared" / "charts").is_dir():
            return parent / "shared" / "charts"
    return None


def pinned() -> list[Chart]:
    """The charts the program installs, from its own Helm releases (the example stack, which
    installs every optional chart: local-path-provisioner included)."""
    from tooling import scaffold

    rec = scaffold.example_run()
    charts = []
    for release in rec.of_type("kubernetes:helm.sh/v3:Release"):
        chart, version = release.inputs["chart"], release.inputs["version"]
        if chart.startswith("oci://"):
            charts.append(Chart(chart.rstrip("/").rsplit("/", 1)[-1], version, chart))
        else:
            charts.append(Chart(chart, version, release.inputs["repositoryOpts"]["repo"]))
    return sorted(charts, key=lambda c: c.name)


def _endpoint(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "", parsed.port or (80 if parsed.scheme == "http" else 443)


def check_reachable(charts: list[Chart], timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise ChartsError naming the first repository host that does not answer (a TCP connect
    with `timeout`, so no network fails in seconds, not after helm's retries)."""
    for host, port in sorted({_endpoint(c.repo) for c in charts}):
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as exc:
            raise ChartsError(
                f"cannot reach {host}:{port} ({exc.strerror or exc}): `make charts` pulls the pinned charts from "
                "their repositories and needs the internet. Without charts the chart tests are skipped; with an "
                "offline copy, set CHARTS_DIR to its folder (CI here uses ../shared/charts)") from None


def _index_digest(chart: Chart) -> str | None:
    """The sha256 digest the HTTP repository's index.yaml publishes for this chart version."""
    url = chart.repo.rstrip("/") + "/index.yaml"
    with urllib.request.urlopen(url, timeout=60) as response:
        index = yaml.safe_load(response.read())
    for entry in (index.get("entries") or {}).get(chart.name) or []:
        if str(entry.get("version")) == chart.version:
            return entry.get("digest")
    raise ChartsError(f"{url} lists no {chart.name} {chart.version}")


def pull(chart: Chart, dest: Path, helm: Path = HELM) -> str:
    """Pull one chart into `dest`, verified; the line for SHA256SUMS (or SHA256SUMS.oci)."""
    with tempfile.TemporaryDirectory() as tmp:
        if chart.is_oci:
            command = [str(helm), "pull", chart.repo, "--version", chart.version, "--destination", tmp]
        else:
            command = [str(helm), "pull", chart.name, "--repo", chart.repo, "--version", chart.version,
                       "--destination", tmp]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise ChartsError(f"helm pull of {chart.name} {chart.version} from {chart.repo} failed: "
                              f"{done.stderr.strip()}")
        got = Path(tmp) / chart.file
        if not got.is_file():
            raise ChartsError(f"helm pull of {chart.name} {chart.version} wrote no {chart.file}")
        digest = hashlib.sha256(got.read_bytes()).hexdigest()
        if chart.is_oci:
            manifest = next((line.split()[-1] for line in (done.stdout + done.stderr).splitlines()
                             if line.startswith("Digest:")), "unknown")
            line = f"{manifest}  {chart.file}  (OCI manifest; the file's sha256 is {digest})"
        else:
            published = _index_digest(chart)
            if published and published != digest:
                raise ChartsError(f"{chart.file}: sha256 {digest} is not the digest {published} that "
                                  f"{chart.repo} publishes; nothing was kept")
            line = f"{digest}  {chart.file}" + ("" if published else "  (the repository publishes no digest)")
        dest.mkdir(parents=True, exist_ok=True)
        shutil.move(str(got), dest / chart.file)
    return line


def _record(dest: Path, chart: Chart, line: str) -> None:
    sums = dest / ("SHA256SUMS.oci" if chart.is_oci else "SHA256SUMS")
    kept = [old for old in (sums.read_text().splitlines() if sums.exists() else []) if chart.file not in old]
    sums.write_text("\n".join(sorted(kept + [line])) + "\n")


def fetch(charts: list[Chart], dest: Path, helm: Path = HELM, timeout: float = CONNECT_TIMEOUT) -> list[Path]:
    """The charts not yet in `dest`, pulled and verified (repositories checked for reachability first)."""
    missing = [c for c in charts if not (dest / c.file).is_file()]
    if missing:
        check_reachable(missing, timeout)
    for chart in missing:
        _record(dest, chart, pull(chart, dest, helm))
        print(f"pulled {chart.file} from {chart.repo}")
    return [dest / c.file for c in charts]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--helm", type=Path, default=HELM)
    parser.add_argument("--dest", type=Path, default=None, help="default: $CHARTS_CACHE or ~/.cache/…/charts")
    parser.add_argument("--if-missing", action="store_true",
                        help="for `make test`: skip when an offline folder exists; unreachable is a note")
    args = parser.parse_args(argv)
    if args.if_missing and offline_dir() is not None:
        return 0  # the offline folder is how CI here works: never reach out
    dest = args.dest or cache_dir()
    try:
        charts = pinned()
        if args.if_missing and all((dest / c.file).is_file() for c in charts):
            return 0
        fetch(charts, dest, args.helm)
    except ChartsError as exc:
        if args.if_missing:
            print(f"note: no charts for the chart tests, which are skipped: {exc}", file=sys.stderr)
            return 0
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"the pinned charts are in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
