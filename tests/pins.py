"""The pinned versions, read from Pulumi.yaml's `versions` block: tests never repeat a version."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
VERSIONS: dict[str, str] = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]["versions"]["value"]
