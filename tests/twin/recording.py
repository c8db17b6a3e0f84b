"""The program's `up` graph for the twin: tests/conftest's run_with, plus one output the shared fakes
do not give yet — pulumi-kubernetes auto-naming (an object registered without metadata.name gets
`<resource name>-<suffix>`, and objects that reference it see that name). Without it a Job's
secretKeyRef would carry no name and the API server would rightly refuse it."""

from __future__ import annotations

import copy
import hashlib
from typing import Any, Optional

from tooling import offline
from tooling.offline import Recording

_cache: dict[tuple, Recording] = {}


def autoname(name: str) -> str:
    return f"{name}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _with_autonames(fake_outputs):
    def outputs(type_: str, name: str, inputs: dict) -> dict[str, Any]:
        found = fake_outputs(type_, name, inputs)
        meta = inputs.get("metadata")
        if type_.startswith("kubernetes:") and isinstance(meta, dict) and not meta.get("name"):
            found = {**found, "metadata": {**meta, "name": autoname(name)}}
        return found
    return outputs


def record(stack: str, secret: Optional[list[str]] = None, **changes: Any) -> Recording:
    """The stack's `up` recording (config changed as tests/conftest.run_with does), auto-names
    filled in both in the named objects' inputs and in what refers to them. A fresh copy each call:
    tests may edit it."""
    from tests.conftest import run_with

    key = (stack, repr(secret), repr(sorted(changes.items())))
    if key not in _cache:
        original = offline.fake_outputs
        offline.fake_outputs = _with_autonames(original)
        try:
            rec = run_with(stack, preview=False, secret=secret, **changes)
        finally:
            offline.fake_outputs = original
        for reg in rec.resources.values():
            meta = reg.inputs.get("metadata")
            if reg.type.startswith("kubernetes:") and isinstance(meta, dict) and not meta.get("name"):
                meta["name"] = autoname(reg.name)
        _cache[key] = rec
    return copy.deepcopy(_cache[key])
