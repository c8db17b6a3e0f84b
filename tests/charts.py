"""Render the program's Helm releases with a real `helm template` against the offline charts.

The charts are test data outside this project (`shared/charts` next to the checkout, or
$CHARTS_DIR); a release whose pinned chart has no offline copy is skipped with a message naming
the missing file. Renders are cached per (chart, release, namespace, values).
"""

from __future__ import annotations

import functools
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest
import yaml

from tests.pins import ROOT, VERSIONS

HELM = ROOT / "venv" / "tools" / "bin" / "helm"  # `make test` installs it
HOOK = "helm.sh/hook"


def charts_dir() -> Optional[Path]:
    """$CHARTS_DIR, else the nearest `shared/charts` above the checkout (the offline folder), else
    the cache `make charts` fills from the charts' real repositories when it holds any chart."""
    from tooling import charts as pulled

    found = pulled.offline_dir()
    if found is not None:
        return found
    cache = pulled.cache_dir()
    return cache if any(cache.glob("*.tgz")) else None


def kube_version() -> str:
    """The Kubernetes version k0s ships: v1.34.2+k0s.0 → 1.34.2."""
    return VERSIONS["k0s"].lstrip("v").split("+")[0]


def chart_file(chart: str, version: str) -> Path:
    """Where the offline copy of a pinned chart lives: <name>-<version>.tgz (OCI refs by their last part)."""
    name = f"{chart.rstrip('/').rsplit('/', 1)[-1]}-{version}.tgz"
    found = charts_dir()
    if found is None:
        pytest.skip(f"no charts (looked for shared/charts above {ROOT}, $CHARTS_DIR, and the cache "
                    f"`make charts` fills): cannot render {name}")
    if not (found / name).is_file():
        pytest.skip(f"no copy of the pinned chart: {found / name} is missing (offline folder: see "
                    "shared/charts/README.md; the cache: `make charts`)")
    return found / name


class RenderError(Exception):
    """helm refused the values (a values.schema.json violation, a failing template)."""


def _helm_run(chart: str, name: str, namespace: str, values_json: str) -> str:
    assert HELM.exists(), "helm is missing: run the tests with `make test`"
    with tempfile.NamedTemporaryFile("w", suffix=".json") as values:
        values.write(values_json)
        values.flush()
        done = subprocess.run([str(HELM), "template", name, chart, "--namespace", namespace,
                               "--values", values.name, "--kube-version", kube_version(), "--include-crds"],
                              capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RenderError(done.stderr.strip())
    return done.stdout


_helm_template = functools.lru_cache(maxsize=None)(_helm_run)


def render_values(release, values: dict[str, Any]) -> list[dict]:
    """The objects a registered `helm.v3.Release` installs with `values` instead of its own."""
    inputs = release.inputs
    chart = chart_file(inputs["chart"], inputs["version"])
    text = _helm_template(str(chart), inputs["name"], inputs["namespace"], json.dumps(values, sort_keys=True))
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render(release) -> list[dict]:
    """The objects a registered `helm.v3.Release` installs, rendered with exactly its values."""
    return render_values(release, release.inputs.get("values") or {})


def installed(objects: list[dict]) -> list[dict]:
    """What the release leaves in the cluster: test hooks are never installed by an install."""
    return [o for o in objects
            if not (o.get("metadata", {}).get("annotations") or {}).get(HOOK, "").startswith("test")]


def key(obj: dict) -> tuple[str, str, str]:
    meta = obj.get("metadata", {})
    return obj.get("kind", ""), meta.get("namespace", ""), meta.get("name", "")


def leaves(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """(path, value) of every leaf a values tree sets: scalars, lists, and empty maps."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from leaves(v, path + (k,))
    else:
        yield path, value


def volatile(release) -> set[tuple]:
    """Leaves that differ between two identical renders (certificates a chart generates itself)."""
    inputs = release.inputs
    again = _helm_run(str(chart_file(inputs["chart"], inputs["version"])), inputs["name"], inputs["namespace"],
                      json.dumps(inputs.get("values") or {}, sort_keys=True))
    first = {key(o): o for o in render(release)}
    second = {key(o): o for o in yaml.safe_load_all(again) if o}
    return {(k, p) for k in first.keys() & second.keys()
            for p, v in leaves(first[k]) if dict(leaves(second[k])).get(p) != v}


def comparable(objects: list[dict], mask: set[tuple]) -> dict:
    """Objects by key with the volatile leaves masked, for comparing two renders."""
    out = {}
    for obj in objects:
        k = key(obj)
        out[k] = {p: ("<volatile>" if (k, p) in mask else v) for p, v in leaves(obj)}
    return out
