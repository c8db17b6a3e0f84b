"""The pinned versions, read from Pulumi.yaml's `versions` block: tests never repeat a version."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
VERSIONS: dict[str, str] = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]["versions"]["value"]


def next_patch(version: str) -> str:
    """The k0s release after `version` in the same minor (v1.34.2+k0s.0 → v1.34.3+k0s.0)."""
    major, minor, patch = version.lstrip("v").split("+")[0].split(".")
    return f"v{major}.{minor}.{int(patch) + 1}+k0s.0"


_PATH = yaml.safe_load((ROOT / "tests" / "upgrade_path.yaml").read_text())
PREVIOUS: dict[str, str] = _PATH["previous"]  # the pins existing clusters were installed with
BETWEEN: dict[str, list[str]] = _PATH["between"]  # the minors an upgrade from PREVIOUS steps through
