"""Custom resources validated against the schemas of the CRDs that define them, strictly: a field
the CRD does not declare is an error (what `kubectl --validate=strict` reports; a non-strict API
server would silently prune it).

Schemas come from the offline CRDs in shared/charts/crds (Cilium's, the pinned Flux toolkit's)
and from the CRDs the program's own releases render at the same pins (cert-manager's, the Flux
Operator's FluxInstance): the pins of Pulumi.yaml, or an earlier set the upgrade tests run at.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any, Optional

import jsonschema
import pytest
import yaml

from tests.charts import charts_dir, render
from tests.pins import VERSIONS

# Offline JSON schemas named <group prefix>-<kind>_<version>.schema.json.
_SCHEMA_FILE = re.compile(r"^(?P<prefix>[a-z0-9]+)-(?P<kind>[a-z0-9]+)_(?P<version>v[0-9a-z]+)\.schema\.json$")
_GROUPS = {"cilium": "cilium.io"}


def structural(schema: dict) -> dict:
    """An openAPIV3Schema as a JSON schema that refuses undeclared fields, as strict validation does."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if not isinstance(node, dict):
            return
        if node.pop("x-kubernetes-int-or-string", False):
            node.pop("type", None)
            node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if node.pop("nullable", False) and "type" in node:
            node["type"] = [node["type"], "null"]
        if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node \
                and not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
        for sub in (node.get("properties") or {}).values():
            walk(sub)
        for key in ("items", "additionalProperties", "not"):
            walk(node.get(key))
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(key) or []:
                walk(sub)

    walk(schema)
    return schema


def _add_crd(found: dict, crd: dict) -> None:
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    for version in crd["spec"]["versions"]:
        found[(f"{group}/{version['name']}", kind.lower())] = structural(version["schema"]["openAPIV3Schema"])


def toolkit_crds(flux: str) -> Optional[Path]:
    """The offline CRDs of Flux `flux`'s toolkit: crds/flux-<v>/toolkit-crds.yaml (one version per
    folder), or the older loose crds/flux-<v>-toolkit-crds.yaml."""
    root = charts_dir()
    if root is None:
        return None
    for path in (root / "crds" / f"flux-{flux}" / "toolkit-crds.yaml", root / "crds" / f"flux-{flux}-toolkit-crds.yaml"):
        if path.is_file():
            return path
    return None


def recording_at(versions: tuple[tuple[str, str], ...]):
    """The dev stack's up recording at these pins (the current pins: the session's own)."""
    from tests.conftest import raw_config, run_stack, run_with

    if dict(versions) == VERSIONS:
        return run_stack("dev", preview=False)
    return run_with(stack="dev", preview=False, versions={**raw_config("dev")["versions"], **dict(versions)})


def pins_of(rec) -> tuple[tuple[str, str], ...]:
    """The pins a recording was made at (what its releases and its Flux distribution name)."""
    (instance,) = [r for r in rec.resources.values() if r.type.endswith(":FluxInstance")] or [None]
    pins = dict(VERSIONS)
    if instance is not None:
        pins["flux"] = instance.inputs["spec"]["distribution"]["version"].lstrip("v")
    for release in rec.of_type("kubernetes:helm.sh/v3:Release"):
        key = {"cilium": "cilium", "cert-manager": "certManager", "gitea": "gitea",
               "flux-operator": "fluxOperator", "local-path-provisioner": "localPathProvisioner"}.get(
            release.inputs["chart"].rstrip("/").rsplit("/", 1)[-1])
        if key:
            pins[key] = release.inputs["version"]
    return tuple(sorted(pins.items()))


@functools.lru_cache(maxsize=None)
def registry(versions: tuple[tuple[str, str], ...] = ()) -> dict[tuple[str, str], dict]:
    """(apiVersion, lowercase kind) → JSON schema, for every CRD this project can see offline at
    these pins (default: Pulumi.yaml's): Cilium's offline schemas, the pinned Flux toolkit's CRDs,
    and the CRDs the pinned charts render (cert-manager's, the Flux Operator's FluxInstance)."""
    versions = versions or tuple(sorted(VERSIONS.items()))
    found: dict[tuple[str, str], dict] = {}
    root = charts_dir()
    if root is not None and (root / "crds").is_dir():
        for path in sorted((root / "crds").iterdir()):
            if match := _SCHEMA_FILE.match(path.name):
                api = f"{_GROUPS[match['prefix']]}/{match['version']}"
                found[(api, match["kind"])] = json.loads(path.read_text())
    toolkit = toolkit_crds(dict(versions)["flux"])
    if toolkit is not None:
        for doc in yaml.safe_load_all(toolkit.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                _add_crd(found, doc)
    for release in recording_at(versions).of_type("kubernetes:helm.sh/v3:Release"):
        try:
            objects = render(release)
        except pytest.skip.Exception:
            continue  # no offline chart for this pin: its CRDs are unknown here
        for obj in objects:
            if obj.get("kind") == "CustomResourceDefinition":
                _add_crd(found, obj)
    return found


def schema_for(api_version: str, kind: str, versions: tuple[tuple[str, str], ...] = ()) -> Optional[dict]:
    return registry(versions).get((api_version, kind.lower()))


def validate(obj: dict, versions: tuple[tuple[str, str], ...] = ()) -> None:
    """Raise if `obj` does not match its CRD's schema at these pins; skip when no schema for it is
    available offline."""
    schema = schema_for(obj["apiVersion"], obj["kind"], versions)
    if schema is None:
        group = obj["apiVersion"].split("/")[0]
        served = sorted(api for api, kind in registry(versions) if kind == obj["kind"].lower()
                        and api.split("/")[0] == group)
        # the CRD is known at these pins, but not this version: the API server would refuse it
        assert not served, f"{obj['apiVersion']} {obj['kind']} is not served at these pins (served: {served})"
        pytest.skip(f"no offline CRD schema for {obj['apiVersion']} {obj['kind']} (shared/charts/crds)")
    jsonschema.validate(obj, schema, cls=jsonschema.Draft7Validator)
