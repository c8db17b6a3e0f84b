"""Validate Kubernetes objects with real schemas, strictly (unknown fields are errors).

- core objects: kubernetes-validate in strict mode, for the Kubernetes minor k0s ships
  (derived from versions.k0s);
- custom resources: the schema of the CRD that defines them (tests/crds.py): the pinned Flux's own
  CRDs, Cilium's, and the cert-manager and FluxInstance CRDs the pinned charts render.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from tests import crds
from tests.pins import VERSIONS

# kubernetes-validate's schemas for the minor k0s ships: v1.34.2+k0s.0 → 1.34.0
KUBERNETES = ".".join(VERSIONS["k0s"].lstrip("v").split(".")[:2]) + ".0"


def is_custom(obj: dict[str, Any]) -> bool:
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    return "." in group and not group.endswith("k8s.io")


def validate(obj: dict[str, Any]) -> None:
    """Raise if `obj` is not a valid object of its apiVersion and kind (unknown fields included)."""
    obj = {k: v for k, v in obj.items() if k != "__defaults"}
    if is_custom(obj):
        crds.validate(obj)
        return
    if KUBERNETES not in kubernetes_validate.utils.all_versions():
        pytest.skip(f"kubernetes-validate {kubernetes_validate.__version__} has no schemas for Kubernetes "
                    f"{KUBERNETES} (versions.k0s {VERSIONS['k0s']})")
    kubernetes_validate.validate(obj, desired_version=KUBERNETES, strict=True)


def manifest(reg) -> dict[str, Any]:
    """The object a kubernetes-provider registration would send (inputs minus provider-only keys)."""
    return {k: v for k, v in reg.inputs.items() if k not in ("__defaults",)}
