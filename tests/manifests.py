"""Validate rendered Kubernetes objects with real schemas, strictly (unknown fields are errors).

- core objects: kubernetes-validate in strict mode, for the Kubernetes minor k0s ships;
- cert-manager and Flux objects: the cloudcoil models, with extra fields forbidden. The setting
  must be in place before the model modules are imported (pydantic builds each class's config
  when the class is created), so this module is the only place that imports them.
"""

from __future__ import annotations

from typing import Any

import cloudcoil.pydantic
import kubernetes_validate

cloudcoil.pydantic.BaseModel.model_config["extra"] = "forbid"

from cloudcoil.models.cert_manager import v1 as cert_manager_v1  # noqa: E402
from cloudcoil.models.fluxcd.kustomize import v1 as kustomize_v1  # noqa: E402
from cloudcoil.models.fluxcd.notification import v1 as notification_v1  # noqa: E402
from cloudcoil.models.fluxcd.source import v1 as source_v1  # noqa: E402

KUBERNETES = "1.34.0"  # the minor of versions.k0s (v1.34.x+k0s.N)

MODELS = {
    ("cert-manager.io/v1", "ClusterIssuer"): cert_manager_v1.ClusterIssuer,
    ("cert-manager.io/v1", "Certificate"): cert_manager_v1.Certificate,
    ("source.toolkit.fluxcd.io/v1", "GitRepository"): source_v1.GitRepository,
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"): kustomize_v1.Kustomization,
    ("notification.toolkit.fluxcd.io/v1", "Receiver"): notification_v1.Receiver,
}


def validate(obj: dict[str, Any]) -> None:
    """Raise if `obj` is not a valid object of its apiVersion and kind (unknown fields included)."""
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key in MODELS:
        MODELS[key].model_validate(obj)
        return
    kubernetes_validate.validate(obj, desired_version=KUBERNETES, strict=True)


def manifest(reg) -> dict[str, Any]:
    """The object a kubernetes-provider registration would send (inputs minus provider-only keys)."""
    return {k: v for k, v in reg.inputs.items() if k not in ("__defaults",)}
