"""Custom resources validated against the schemas of the CRDs that define them, strictly: a field
the CRD does not declare is an error (what `kubectl --validate=strict` reports; a non-strict API
server would silently prune it).

Schemas come from the offline CRDs in shared/charts/crds (Cilium's, the FluxInstance's, Flux
2.7's toolkit) and from the CRDs the program's own releases render (cert-manager's).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from typing import Any, Optional

import jsonschema
import pytest
import yaml

from tests.charts import charts_dir, render

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


@functools.lru_cache(maxsize=None)
def registry() -> dict[tuple[str, str], dict]:
    """(apiVersion, lowercase kind) → JSON schema, for every CRD this project can see offline."""
    from tests.conftest import run_stack  # the dev stack's releases: the CRDs the program installs

    found: dict[tuple[str, str], dict] = {}
    root = charts_dir()
    if root is not None and (root / "crds").is_dir():
        for path in sorted((root / "crds").iterdir()):
            if path.suffix == ".yaml":
                for doc in yaml.safe_load_all(path.read_text()):
                    if doc and doc.get("kind") == "CustomResourceDefinition":
                        _add_crd(found, doc)
            elif match := _SCHEMA_FILE.match(path.name):
                api = f"{_GROUPS[match['prefix']]}/{match['version']}"
                found[(api, match["kind"])] = json.loads(path.read_text())
    for release in run_stack("dev", preview=False).of_type("kubernetes:helm.sh/v3:Release"):
        try:
            objects = render(release)
        except pytest.skip.Exception:
            continue  # no offline chart for this pin: its CRDs are unknown here
        for obj in objects:
            if obj.get("kind") == "CustomResourceDefinition":
                _add_crd(found, obj)
    return found


def schema_for(api_version: str, kind: str) -> Optional[dict]:
    return registry().get((api_version, kind.lower()))


def validate(obj: dict) -> None:
    """Raise if `obj` does not match its CRD's schema; skip when no schema for it is available."""
    schema = schema_for(obj["apiVersion"], obj["kind"])
    if schema is None:
        pytest.skip(f"no offline CRD schema for {obj['apiVersion']} {obj['kind']} (shared/charts/crds)")
    jsonschema.validate(obj, schema, cls=jsonschema.Draft7Validator)
